"""qsipctl.report."""
