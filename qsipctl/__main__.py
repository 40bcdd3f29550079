"""Allow ``python -m qsipctl``."""

from qsipctl.cli.main import main

main()
