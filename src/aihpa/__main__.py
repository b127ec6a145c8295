"""`python -m aihpa`: the `aihpa` command."""

from aihpa.cli import main

raise SystemExit(main())
