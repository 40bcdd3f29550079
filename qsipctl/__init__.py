"""qsipctl: provision and diagnose the SIP softphones of Q-SYS cores."""

__version__ = "0.1.0"
