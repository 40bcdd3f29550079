"""qsipctl.rtp."""
