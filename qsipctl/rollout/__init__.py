"""qsipctl.rollout."""
