"""A fake Splunk Observability Cloud REST API (/v2 charts, dashboards, groups, detectors) on
127.0.0.1 that keeps state like the real one and records every request."""

from __future__ import annotations

import itertools
import json
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KINDS = ("chart", "dashboard", "dashboardgroup", "detector")
PREFIX = {"chart": "CH", "dashboard": "DB", "dashboardgroup": "DG", "detector": "DT"}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    token: str | None

    @property
    def call(self) -> str:
        return f"{self.method} {self.path}"


class FakeApi:
    def __init__(self, token: str = "test-token") -> None:
        self.token = token
        self.requests: list[Recorded] = []
        self.objects: dict[str, dict[str, dict]] = {kind: {} for kind in KINDS}
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self) -> list[str]:
        return [r.call for r in self.requests]

    def reset_log(self) -> None:
        self.requests.clear()

    def handle(self, method: str, raw_path: str, body: Any, token: str | None) -> tuple[int, Any]:
        parsed = urllib.parse.urlparse(raw_path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        with self._lock:
            self.requests.append(Recorded(method, parsed.path, query, body, token))
            if token != self.token:
                return 401, {"message": "unauthorized"}
            parts = parsed.path.strip("/").split("/")
            if len(parts) < 2 or parts[0] != "v2" or parts[1] not in KINDS:
                return 404, {"message": "no such path"}
            store = self.objects[parts[1]]
            if len(parts) == 2 and method == "GET":
                name = query.get("name", "")
                results = [o for o in store.values() if name.lower() in o["name"].lower()]
                return 200, {"count": len(results), "results": results}
            if len(parts) == 2 and method == "POST":
                new_id = f"{PREFIX[parts[1]]}{next(self._ids)}"
                store[new_id] = {**body, "id": new_id}
                if parts[1] == "dashboardgroup":
                    store[new_id]["dashboards"] = []
                if parts[1] == "dashboard":
                    self.objects["dashboardgroup"][body["groupId"]]["dashboards"].append(new_id)
                return 200, store[new_id]
            if len(parts) == 3:
                item = store.get(parts[2])
                if item is None:
                    return 404, {"message": "not found"}
                if method == "GET":
                    return 200, item
                if method == "PUT":
                    store[parts[2]] = {**item, **body, "id": parts[2]}
                    return 200, store[parts[2]]
                if method == "DELETE":
                    del store[parts[2]]
                    if parts[1] == "dashboard":
                        group = self.objects["dashboardgroup"].get(item["groupId"])
                        if group:
                            group["dashboards"].remove(parts[2])
                    return 204, None
            return 405, {"message": "method not allowed"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                status, answer = fake.handle(
                    self.command, self.path, body, self.headers.get("X-SF-Token")
                )
                data = json.dumps(answer).encode() if answer is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args) -> None:
                pass

        return Handler
