"""qsipctl.sip."""
