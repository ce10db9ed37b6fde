"""Anchor for benchmark 3: the assistant app on Flask's development server (threaded).

The serving model of the original blog post: `app.run(threaded=True)`, one thread per connection,
no gunicorn. Telemetry is initialised exactly as gunicorn's post_fork does it, so only the server
differs. Run with the assistant's venv and PYTHONPATH=services/assistant/src.
"""

from __future__ import annotations

import sys

from assistant.config import ConfigError, load_config
from assistant.telemetry import init_worker_sdk


def main() -> int:
    try:
        cfg = load_config()
    except ConfigError as exc:
        print(f"assistant: configuration error: {exc}", file=sys.stderr)
        return 2
    init_worker_sdk(cfg.telemetry_enabled)
    from assistant.app import create_app

    create_app().run(host=cfg.host, port=cfg.port, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
