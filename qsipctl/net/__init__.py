"""qsipctl.net."""
