"""`python -m castproxy` runs the command-line interface."""

from castproxy.cli import main

raise SystemExit(main())
