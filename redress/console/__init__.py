"""The console: the web pages agents and supervisors work cases in, with decisions signed by passkeys.

`redress console` serves it (started by `make run` on http://localhost:8090); see
app.py for the pages and actions, sessions.py for sign-in state, people.py for the
directory it reads, and static/console.js for the only script (passkeys, countdowns,
live updates).
"""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette

from redress.client import RedressClient
from redress.codec_server import HeadDeadline
from redress.console.app import Settings, create_app

__all__ = ["ConsoleServer", "Settings"]


class ConsoleServer:
    """The console on a background thread (beside the worker in `make run`, or alone with `redress console`).

    It runs its own event loop on that thread; the Temporal client is connected there too
    (a client belongs to the loop it was made on).
    """

    def __init__(
        self,
        connect,
        settings: Settings,
        host: str = "127.0.0.1",
        port: int = 8090,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> None:
        if settings.enroll and settings.trusted_header:
            raise ValueError("enrolment is for development: it cannot be combined with a trusted proxy header")
        if settings.enroll and host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"enrolment is for development: serve on localhost, not {host}")
        self._connect = connect  # async () -> RedressClient, called on the console's own loop
        self.settings = settings
        self.app: Starlette | None = None
        self.failure: Exception | None = None
        config = uvicorn.Config(
            self._asgi,
            host=host,
            port=port,
            http=HeadDeadline,
            lifespan="on",
            interface="asgi3",
            access_log=False,
            log_config=None,
            timeout_keep_alive=5,
            limit_concurrency=500,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
        )
        self.tls = tls_cert is not None
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="console", daemon=True)

    async def _asgi(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    redress: RedressClient = await self._connect()
                    self.app = create_app(redress, self.settings)
                except Exception as error:  # reported by the thread's starter
                    self.failure = error
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.app is not None
        await self.app(scope, receive, send)

    @property
    def url(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"{'https' if self.tls else 'http'}://{'localhost' if host == '127.0.0.1' else host}:{port}"

    def __enter__(self) -> ConsoleServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if self.failure is not None:
                raise OSError(f"the console did not start: {self.failure}")
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise OSError("the console did not start (is the port taken?)")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
