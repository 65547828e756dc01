"""`python -m lablib ...`: the same as the `lablib` command (see lablib.cli)."""

import sys

from lablib.cli import main

sys.exit(main())
