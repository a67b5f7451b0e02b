"""`python -m courrier` runs the command-line interface."""

from courrier.cli.main import main

raise SystemExit(main())
