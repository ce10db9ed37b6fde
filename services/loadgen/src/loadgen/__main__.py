"""`python -m loadgen`: validate LOADGEN_* once, then exec Locust with the matching command line.

Extra arguments are passed to Locust unchanged; `--print-command` prints the command instead.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from loadgen.config import Config, ConfigError, load_config

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def locust_argv(config: Config, locustfile: Path = LOCUSTFILE) -> list[str]:
    """The Locust command line for this configuration (without the interpreter)."""
    argv = [
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--loglevel",
        config.log_level,
        "--stop-timeout",
        str(config.stop_timeout_s),
        "--loadgen-run-id",
        config.run_id,
    ]
    if config.role == "worker":
        return [
            *argv,
            "--worker",
            "--master-host",
            config.master_host,
            "--master-port",
            str(config.master_port),
        ]
    report = config.report_dir
    argv += ["--host", config.host, "--csv", str(report / "locust")]
    if config.shape == "constant":
        argv += ["--users", str(config.users), "--spawn-rate", f"{config.spawn_rate:g}"]
    if config.role == "master":
        argv += [
            "--master",
            "--master-bind-port",
            str(config.master_port),
            "--expect-workers",
            str(config.expect_workers),
        ]
    if config.headless:
        # Run time and the per-user cap are enforced by the locustfile, which stops the test
        # only after every worker has delivered its samples.
        argv += [
            "--headless",
            "--only-summary",
            "--html",
            str(report / "locust.html"),
            "--json-file",
            str(report / "locust"),
        ]
    else:
        argv += ["--web-host", config.web_host, "--web-port", str(config.web_port)]
        if config.autostart:
            argv += ["--autostart"]
    return argv


def main(args: list[str]) -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"loadgen: configuration error: {exc}", file=sys.stderr)
        return 2
    print_only = "--print-command" in args
    extra = [a for a in args if a != "--print-command"]
    argv = [sys.executable, *locust_argv(config), *extra]
    if print_only:
        print(shlex.join(argv))
        return 0
    if config.role != "worker":
        config.report_dir.mkdir(parents=True, exist_ok=True)
    # Every process of the run (and the locustfile's own parse) sees the same run id.
    os.environ["LOADGEN_RUN_ID"] = config.run_id
    sys.stdout.flush()
    os.execv(sys.executable, argv)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
