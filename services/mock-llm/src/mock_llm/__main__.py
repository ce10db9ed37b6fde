"""`python -m mock_llm`: validate the configuration, then serve with gevent."""

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from mock_llm.app import create_app  # noqa: E402
from mock_llm.config import ConfigError, load_settings  # noqa: E402
from mock_llm.profiles import ProfileError, load_profiles  # noqa: E402
from mock_llm.server import MockServer  # noqa: E402


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    log = logging.getLogger("mock_llm")
    try:
        settings = load_settings()
        profiles = load_profiles(settings.profiles_path)
    except (ConfigError, ProfileError) as exc:
        print(f"mock-llm: configuration error: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings, profiles)
    server = MockServer(
        (settings.host, settings.port),
        app,
        tcp_nodelay=settings.tcp_nodelay,
        log=sys.stderr if settings.access_log else None,
        error_log=sys.stderr,
    )
    gevent.signal_handler(signal.SIGTERM, server.stop, timeout=1)
    gevent.signal_handler(signal.SIGINT, server.stop, timeout=1)
    server.init_socket()
    log.info(
        "mock-llm listening on http://%s:%d models=%s profiles=%s",
        settings.host,
        server.server_port,
        ",".join(profiles.models),
        settings.profiles_path,
    )
    server.serve_forever()
    log.info("mock-llm stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
