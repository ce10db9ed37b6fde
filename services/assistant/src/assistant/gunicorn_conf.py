"""gunicorn settings (`gunicorn -c python:assistant.gunicorn_conf assistant.wsgi:app`).

Worker model: gthread (threads hold concurrent SSE streams), 2 worker processes by default (one
per core of the container; docs/performance.md, benchmark 3), sharing sessions and feedback
through a SQLite file (assistant/store.py). The OpenTelemetry SDK is initialised
per worker in `post_fork` with the Splunk distribution (`init_splunk_otel()`); the master records
nothing and the app is not preloaded, so no telemetry state crosses a fork.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from assistant.config import ConfigError, load_config

try:
    _cfg = load_config()
except ConfigError as _exc:
    print(f"assistant: configuration error: {_exc}", file=sys.stderr)
    sys.exit(2)

if _cfg.secret_key_generated:
    # generated once in the master so every worker signs cookies with the same key
    os.environ["ASSISTANT_SECRET_KEY"] = _cfg.secret_key
    print(
        "assistant: WARNING ASSISTANT_SECRET_KEY is not set; generated a random key: session "
        "cookies will not survive a restart",
        file=sys.stderr,
    )

_own_state_dir = ""
if _cfg.workers > 1 and not _cfg.state_dir:
    # a conversation's next turn or an answer's feedback may reach another worker: the workers
    # share sessions and feedback through a SQLite file in a folder made here, removed at exit
    _own_state_dir = tempfile.mkdtemp(prefix="assistant-state-")
    os.environ["ASSISTANT_STATE_DIR"] = _own_state_dir

print(
    f"assistant: LLM backend {_cfg.openai_base_url}, models {', '.join(_cfg.models)}, "
    f"{_cfg.workers} worker(s) x {_cfg.threads} threads, sessions "
    + ("shared by the workers" if _own_state_dir or _cfg.state_dir else "in process memory"),
    file=sys.stderr,
)

bind = f"{_cfg.host}:{_cfg.port}"
workers = _cfg.workers
worker_class = "gthread"
threads = _cfg.threads
preload_app = False  # the app (and any telemetry) is created in each worker, after fork
timeout = 30  # gthread heartbeat, not a request limit: streams may last longer
graceful_timeout = 20
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = _cfg.log_level.lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
proc_name = "assistant"
control_socket_disable = True  # not used; avoids a socket under $HOME shared by instances


class _ClientWriteTimeoutLog(logging.Filter):
    """A client dropped by the write timeout (`wsgi.ClientWriteTimeout`) is expected, not a server
    error: gunicorn logs its `TimeoutError` with a traceback; log one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, TimeoutError):
            record.msg = (
                "client stopped reading: no progress writing the response for %ss "
                "(ASSISTANT_CLIENT_WRITE_TIMEOUT); connection dropped"
            )
            record.args = (_cfg.client_write_timeout_s,)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def post_fork(server, worker):
    logging.basicConfig(
        level=_cfg.log_level, format="%(asctime)s %(levelname)s [%(name)s] %(message)s"
    )
    logging.getLogger("gunicorn.error").addFilter(_ClientWriteTimeoutLog())
    # one INFO line per LLM request is noise next to the access log
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from assistant.telemetry import init_worker_sdk

    if init_worker_sdk(_cfg.telemetry_enabled, _cfg.telemetry_retry_s):
        server.log.info("worker %s: OpenTelemetry initialised (Splunk distribution)", worker.pid)


def on_exit(server):
    if _own_state_dir:
        shutil.rmtree(_own_state_dir, ignore_errors=True)


def worker_exit(server, worker):
    from assistant.evals import stop_all
    from assistant.telemetry import shutdown_worker_sdk

    stop_all()  # queued evaluations drain (bounded) while the SDK can still export them
    shutdown_worker_sdk()
