"""Entry point: `python -m scorecard --help`."""

import sys

if sys.version_info < (3, 11):  # noqa: UP036 - a clear message on old interpreters
    sys.exit(f"scorecard: error: Python >= 3.11 is required (this is {sys.version.split()[0]})")

from scorecard.cli import main

sys.exit(main())
