"""qsipctl.lab."""
