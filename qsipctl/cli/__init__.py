"""qsipctl.cli."""
