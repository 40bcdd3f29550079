"""Allow ``python -m qsipctl`` (with the console script's exit codes)."""

from qsipctl.cli.main import main

raise SystemExit(main())
