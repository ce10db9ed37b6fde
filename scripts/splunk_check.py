#!/usr/bin/env python3
"""Check the Splunk Observability Cloud settings before sending data (`make splunk-check`).

Reads SPLUNK_ACCESS_TOKEN, SPLUNK_REALM, SPLUNK_INGEST_URL and SPLUNK_API_URL from the environment,
else from .env (the environment wins, as with Docker Compose), and makes two cheap calls:

  1. POST <ingest>/v2/datapoint with no data points: what the collector needs (ingest scope).
  2. GET <api>/v2/organization: informational; an ingest-only token is refused here, which is fine.

Says clearly what is wrong: missing token, malformed or unknown realm, token refused (401/403).
Exit code 0 when the collector can send with these settings, 1 when it cannot, 2 when settings are
missing or malformed. The token is never printed. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REALM = re.compile(r"^[a-z]{2}[0-9]{1,2}$")
TIMEOUT_S = 10.0
OK, FAILED, MISCONFIGURED = 0, 1, 2


@dataclass(frozen=True)
class Settings:
    token: str = field(repr=False)
    realm: str
    ingest_url: str
    api_url: str


class SettingsError(ValueError):
    """A missing or malformed setting; the message says which and what to do."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a Compose-style .env file (comments, blank lines and quotes handled)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].strip()
        values[key.strip()] = value
    return values


def load_settings(env: Mapping[str, str]) -> Settings:
    token = env.get("SPLUNK_ACCESS_TOKEN", "").strip()
    realm = env.get("SPLUNK_REALM", "").strip().lower()
    ingest = env.get("SPLUNK_INGEST_URL", "").strip().rstrip("/")
    api = env.get("SPLUNK_API_URL", "").strip().rstrip("/")
    if not token:
        raise SettingsError(
            "SPLUNK_ACCESS_TOKEN is not set. Put an access token with the INGEST scope in .env "
            "(Splunk Observability Cloud > Settings > Access Tokens)."
        )
    if not (ingest and api):
        if not realm:
            raise SettingsError(
                "SPLUNK_REALM is not set. Set it in .env to your organization's realm, e.g. us1 "
                "(Settings > your name > Organizations shows it)."
            )
        if not REALM.match(realm):
            raise SettingsError(
                f"SPLUNK_REALM={realm!r} is not a realm name: expected something like us0, us1, "
                "eu0, jp0 or au0, not a URL or host name."
            )
        ingest = ingest or f"https://ingest.{realm}.observability.splunkcloud.com"
        api = api or f"https://api.{realm}.observability.splunkcloud.com"
    for name, url in (("SPLUNK_INGEST_URL", ingest), ("SPLUNK_API_URL", api)):
        if not re.match(r"^https?://[^/\s]+", url):
            raise SettingsError(f"{name}={url!r} is not an http(s):// URL.")
    return Settings(token=token, realm=realm, ingest_url=ingest, api_url=api)


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer at all
    problem: str = ""  # why there was no answer
    body: str = ""


def call(method: str, url: str, token: str, body: bytes | None = None) -> Answer:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("X-SF-Token", token)
    request.add_header("User-Agent", "llm-otel-lab-splunk-check/1")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return Answer(response.status, body=response.read(4096).decode(errors="replace"))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, body=exc.read(4096).decode(errors="replace"))
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, socket.gaierror):
            return Answer(None, "the host name does not resolve")
        return Answer(None, str(reason))
    except (TimeoutError, OSError) as exc:
        return Answer(None, str(exc) or type(exc).__name__)


def host_of(url: str) -> str:
    return re.sub(r"^https?://", "", url).split("/", 1)[0]


def check(settings: Settings, out=sys.stdout) -> int:
    def say(text: str) -> None:
        print(text, file=out)

    realm = settings.realm or "(from the URLs)"
    say(f"Splunk check: realm {realm}, token set ({len(settings.token)} characters)")

    ingest = call("POST", f"{settings.ingest_url}/v2/datapoint", settings.token, b"{}")
    where = host_of(settings.ingest_url)
    if ingest.status is None:
        hint = (
            f" Is SPLUNK_REALM={settings.realm!r} right? Realms look like us0, us1, eu0."
            if settings.realm
            else ""
        )
        say(f"FAIL  ingest {where}: no answer ({ingest.problem}).{hint}")
        return FAILED
    if ingest.status in (401, 403):
        say(
            f"FAIL  ingest {where}: HTTP {ingest.status}, the token was refused. Check that "
            "SPLUNK_ACCESS_TOKEN is an access token of this realm's organization, with the INGEST "
            "scope, not expired or disabled (a token of another realm is refused too)."
        )
        return FAILED
    if ingest.status != 200:
        say(f"FAIL  ingest {where}: unexpected HTTP {ingest.status}: {ingest.body[:200]}")
        return FAILED
    say(f"OK    ingest {where}: the token can send traces and metrics")

    api = call("GET", f"{settings.api_url}/v2/organization", settings.token)
    where = host_of(settings.api_url)
    if api.status == 200:
        try:
            name = json.loads(api.body).get("organizationName", "")
        except (ValueError, AttributeError):
            name = ""
        say(f"OK    api {where}: organization {name!r}" if name else f"OK    api {where}")
    elif api.status in (401, 403):
        say(
            f"NOTE  api {where}: HTTP {api.status}: this token has no API scope. Sending data "
            "works; dashboards as code need a token with the API scope."
        )
    else:
        problem = f"HTTP {api.status}" if api.status else api.problem
        say(f"NOTE  api {where}: {problem} (not needed to send data)")
    say("Ready: `make up` sends traces and metrics to Splunk Observability Cloud.")
    return OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--env-file", type=Path, default=ROOT / ".env", help="read settings from this file"
    )
    args = parser.parse_args(argv)
    env = {**read_env_file(args.env_file), **os.environ}
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        print(f"Splunk check: {exc}", file=sys.stderr)
        return MISCONFIGURED
    return check(settings)


if __name__ == "__main__":
    sys.exit(main())
