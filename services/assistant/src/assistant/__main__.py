"""`python -m assistant`: run the service under gunicorn with its configuration."""

from __future__ import annotations

import sys


def main() -> None:
    from gunicorn.app.wsgiapp import run

    sys.argv = ["gunicorn", "-c", "python:assistant.gunicorn_conf", "assistant.wsgi:app"]
    run()


if __name__ == "__main__":
    main()
