"""qsipctl.stun."""
