"""qsipctl.site."""
