"""`python -m daemon` is `relight`."""

from daemon.cli import main

raise SystemExit(main())
