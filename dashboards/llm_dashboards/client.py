"""A minimal Splunk Observability Cloud REST client (stdlib only; the token stays in headers)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ApiError(Exception):
    """An API call failed: the message names the call and the answer, never the token."""


class Api:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:  # never show the token
        return f"Api({self.base_url!r})"

    def call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        query: dict[str, str] | None = None,
        ok_missing: bool = False,
    ) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("X-SF-Token", self._token)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            if ok_missing and exc.code == 404:
                return None
            detail = exc.read().decode("utf-8", "replace")[:300]
            hint = (
                " (check SPLUNK_API_TOKEN: it needs the API scope)"
                if exc.code in (401, 403)
                else ""
            )
            raise ApiError(f"{method} {path} -> HTTP {exc.code}{hint}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"{method} {self.base_url}{path} failed: {reason}") from None
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ApiError(f"{method} {path} answered non-JSON: {text[:200]}") from None

    def find_by_name(self, kind: str, name: str) -> list[dict]:
        """Objects of `kind` (dashboard, dashboardgroup, detector) whose name is exactly `name`."""
        found = self.call("GET", f"/v2/{kind}", query={"name": name, "limit": "100"}) or {}
        return [item for item in found.get("results", []) if item.get("name") == name]
