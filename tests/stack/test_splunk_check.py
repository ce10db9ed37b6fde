"""`make splunk-check` (scripts/splunk_check.py) against local fakes: it says clearly what is wrong.

The ingest is the fake Splunk ingest (harness.fake_splunk); the API is a tiny fake answering
/v2/organization. Everything listens on 127.0.0.1; the script is run as `make` runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.fake_splunk import FakeSplunk
from harness.prereq import ROOT
from harness.procs import free_port

SCRIPT = ROOT / "scripts" / "splunk_check.py"
TOKEN = "s3cr3t-token-value-1234"


class FakeApi:
    """GET /v2/organization: 200 with the org for `api_token`, 401 for anything else."""

    def __init__(self, api_token: str | None) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                owner.seen.append((self.path, self.headers.get("X-SF-Token")))
                ok = self.path == "/v2/organization" and self.headers.get("X-SF-Token") == (
                    owner.api_token
                )
                body = json.dumps({"organizationName": "Lab Org"} if ok else {"message": "no"})
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        self.api_token = api_token
        self.seen: list[tuple[str, str | None]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ingest() -> Iterator[FakeSplunk]:
    with FakeSplunk(token=TOKEN) as fake:
        yield fake


def run_check(env: dict[str, str], tmp_path: Path, env_file: str | None = None):
    path = tmp_path / "lab.env"
    path.write_text(env_file or "")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--env-file", str(path)],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert TOKEN not in output, "the token must never be printed"
    return result.returncode, output


def test_missing_token_is_named(tmp_path):
    code, output = run_check({"SPLUNK_REALM": "us1"}, tmp_path)
    assert code == 2
    assert "SPLUNK_ACCESS_TOKEN is not set" in output


@pytest.mark.parametrize(
    ("realm", "expected"),
    [
        ("", "SPLUNK_REALM is not set"),
        ("https://api.us1.observability.splunkcloud.com", "is not a realm name"),
        ("us 1", "is not a realm name"),
    ],
)
def test_missing_or_malformed_realm_is_named(tmp_path, realm, expected):
    code, output = run_check({"SPLUNK_ACCESS_TOKEN": TOKEN, "SPLUNK_REALM": realm}, tmp_path)
    assert code == 2
    assert expected in output


def test_realm_gives_the_splunkcloud_urls():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import splunk_check
    finally:
        sys.path.remove(str(SCRIPT.parent))
    settings = splunk_check.load_settings({"SPLUNK_ACCESS_TOKEN": TOKEN, "SPLUNK_REALM": "EU0"})
    assert settings.ingest_url == "https://ingest.eu0.observability.splunkcloud.com"
    assert settings.api_url == "https://api.eu0.observability.splunkcloud.com"
    assert TOKEN not in repr(settings)


def test_refused_token_says_401(tmp_path, ingest):
    with FakeApi(api_token=None) as api:
        env = {
            "SPLUNK_ACCESS_TOKEN": "not-the-token",
            "SPLUNK_INGEST_URL": ingest.url,
            "SPLUNK_API_URL": api.url,
        }
        code, output = run_check(env, tmp_path)
    assert code == 1
    assert "HTTP 401, the token was refused" in output
    (record,) = ingest.recorded()
    assert (record["path"], record["status"]) == ("/v2/datapoint", 401)
    assert record["body"] == []  # nothing was sent: an empty upload


def test_ingest_token_without_api_scope_is_ready(tmp_path, ingest):
    with FakeApi(api_token="other") as api:
        env = {"SPLUNK_ACCESS_TOKEN": TOKEN, "SPLUNK_INGEST_URL": ingest.url}
        code, output = run_check(env, tmp_path, env_file=f"SPLUNK_API_URL={api.url}\n")
        assert api.seen == [("/v2/organization", TOKEN)]
    assert code == 0, output
    assert "OK    ingest" in output
    assert "no API scope" in output
    assert "Ready" in output
    (record,) = ingest.recorded()
    assert record["headers"]["x-sf-token"] == TOKEN and record["status"] == 200


def test_token_with_api_scope_names_the_organization(tmp_path, ingest):
    with FakeApi(api_token=TOKEN) as api:
        env_file = (
            "# settings as a user writes them\n"
            f"SPLUNK_ACCESS_TOKEN='{TOKEN}'\n"
            f"SPLUNK_INGEST_URL={ingest.url}  # the fake\n"
            f"SPLUNK_API_URL={api.url}\n"
        )
        code, output = run_check({}, tmp_path, env_file=env_file)
    assert code == 0, output
    assert "organization 'Lab Org'" in output


def test_environment_wins_over_the_env_file(tmp_path, ingest):
    with FakeApi(api_token=TOKEN) as api:
        env_file = f"SPLUNK_ACCESS_TOKEN=stale\nSPLUNK_API_URL={api.url}\n"
        env = {"SPLUNK_ACCESS_TOKEN": TOKEN, "SPLUNK_INGEST_URL": ingest.url}
        code, output = run_check(env, tmp_path, env_file=env_file)
    assert code == 0, output


def test_unreachable_ingest_is_reported(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"SPLUNK_ACCESS_TOKEN": TOKEN, "SPLUNK_INGEST_URL": closed, "SPLUNK_API_URL": closed}
    code, output = run_check(env, tmp_path)
    assert code == 1
    assert "no answer" in output and "127.0.0.1" in output
