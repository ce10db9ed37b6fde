"""The one exception type the CLI turns into a message and an exit code (never a traceback)."""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_NO_DATA = 3
EXIT_BAD_INPUT = 4
# --strict only, after the reports are written: a client-vs-server row or a consistency check
# (the same figure in spans and metrics) disagrees, so this run's telemetry is not to be trusted.
EXIT_CHECKS_FAILED = 5


class ScorecardError(Exception):
    """A problem the user can fix: printed as one clear message, then exit with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
