"""qsipctl.probes."""
