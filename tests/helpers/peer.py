"""A real HTTP peer on 127.0.0.1 for tests: records every request and honours Idempotency-Key.

It behaves as a well-made notification or payment service would: the first
request with a key acts (an "effect"); a repeat of the key gets the stored
answer and acts no more. Tests script failures: answer N requests with a status
(503, 422 ...) or stall N requests past the client's timeout after acting.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    key: str | None
    body: dict[str, Any]
    at: float = field(default_factory=time.perf_counter)  # when it arrived (benchmarks time to here)


@dataclass
class Script:
    fail: list[int] = field(default_factory=list)  # statuses to answer before acting
    stall_seconds: list[float] = field(default_factory=list)  # act, then stall this long before answering
    reason: str | None = None  # the reason phrase of those failures (services put all sorts in it)


class Peer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.effects: dict[str, dict[str, Any]] = {}  # key -> stored answer
        self.effect_log: list[Request] = []
        self.scripts: dict[str, Script] = {}
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length:  # the client died mid-request: a real service acts on nothing half-sent
                    return
                body = json.loads(raw or b"{}")
                status, answer, stall = peer._handle(self.path, self.headers.get("Idempotency-Key"), body)
                if stall:
                    time.sleep(stall)
                payload = json.dumps(answer).encode()
                script = peer.scripts.get(self.path)
                try:
                    self.send_response(status, script.reason if script and status >= 400 else None)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting: exactly the case being tested

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Peer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(
        self,
        path: str,
        fail: list[int] | None = None,
        stall_seconds: list[float] | None = None,
        reason: str | None = None,
    ) -> None:
        with self._lock:
            self.scripts[path] = Script(list(fail or []), list(stall_seconds or []), reason)

    def _handle(self, path: str, key: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        with self._lock:
            request = Request(path, key, body)
            self.requests.append(request)
            script = self.scripts.get(path)
            if script and script.fail:
                status = script.fail.pop(0)
                # like many services' validation errors, the refusal echoes what it was sent
                return status, {"error": f"scripted {status}", "request": body}, 0.0
            if key and key in self.effects:
                return 200, self.effects[key], 0.0
            answer: dict[str, Any] = {"ok": True}
            if path.startswith("/pay"):
                paid = sum(1 for r in self.effect_log if r.path.startswith("/pay"))
                answer["transaction_id"] = f"tx-{paid + 1}"
            if key:
                self.effects[key] = answer
            self.effect_log.append(request)
            stall = script.stall_seconds.pop(0) if script and script.stall_seconds else 0.0
            return 200, answer, stall

    # ---- what tests read

    def received(self, path: str, **match: Any) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path and all(r.body.get(k) == v for k, v in match.items())]

    def acted(self, path: str, **match: Any) -> list[Request]:
        with self._lock:
            return [r for r in self.effect_log if r.path == path and all(r.body.get(k) == v for k, v in match.items())]
