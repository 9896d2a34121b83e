"""Remote codec server: lets the Temporal Web UI and CLI show decrypted payloads to authorised people only.

Temporal's codec protocol: POST {endpoint}/decode and {endpoint}/encode with a
Payloads message as protobuf JSON. Every such POST must carry either a token
issued by `redress keys codec-token NAME` (`Authorization: Bearer <token>`: the
CLI's --codec-auth, scripts, a UI behind SSO passing its access token) or the
session cookie set by /login (the UI with "include cross-origin credentials").

What a request must get through, in this order, before any of its body is read:
its origin (CORS answers the UI's origins only; /login takes a form only from
this server's own page or a UI origin), its credentials, and its declared size
(no Content-Length: 411; not a number or negative: 400; over 8 MiB: 413). The
body must then arrive within 10 s, and a connection must send its request head
within 10 s, so a slow client cannot hold the server (uvicorn on Starlette).

The session cookie is not the token: it names a server-side session (12 hours,
ended at once when its token is revoked) and is signed, HttpOnly, SameSite=Lax,
and Secure when served over TLS. Only token digests are stored (SHA-256 in keys/;
in the shared state an HMAC under a key derived from the deployment ring, so
write access to the database cannot add a token), so reading them gives none. Each decode is logged with the token's
name, never with the payloads.

Payloads encoded at `/encode` have no workflow: they are sealed under the
deployment key, unbound, and a workflow refuses them (redress/codec.py). Plain-JSON
clients use `/bind/<workflow id>/encode` (the endpoint
`http://host:8081/bind/<workflow id>`), which seals them for that workflow, with
the case's own key for a complaint case. `POST /pseudonym` gives such a client a
customer's pseudonym (`{"customer_id": ...}` -> the customer record's workflow id).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import structlog
import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payloads
from uvicorn.protocols.http.h11_impl import H11Protocol

from redress import codec
from redress.contract import customer_workflow_id
from redress.state import SharedState, StateUnavailable, open_state

log = structlog.get_logger("redress.codec_server")

COOKIE = "redress_codec_session"
MAX_BODY = 8 * 1024 * 1024
BODY_SECONDS = 10.0  # the whole body must arrive within this
HEAD_SECONDS = 10.0  # a connection must send its request head within this
SESSION_SECONDS = 12 * 3600
LOGIN_FORM_MAX = 4096


def _tokens_of(directory: Path) -> SharedState:
    """The deployment's token store; a shared one keys its digests with the deployment ring (loaded here)."""
    state = open_state(directory)
    if state.shared:
        codec.deployment_ring(directory, state)
    return state


def issue_token(directory: Path, name: str) -> str:
    """A new token for NAME (replacing NAME's old one); only its digest is kept, in the deployment's state."""
    state = _tokens_of(directory)
    token = secrets.token_urlsafe(32)
    state.put_token(name, state.token_digest(token))
    return token


def revoke_token(directory: Path, name: str) -> bool:
    return _tokens_of(directory).drop_token(name)


class TokenCheck:
    """Reads the token digests on every check (a file, or the shared store), so issuing or revoking needs no restart."""

    def __init__(self, directory: Path):
        self.state = _tokens_of(directory)

    def digest(self, token: str) -> str:
        return self.state.token_digest(token)

    def who(self, token: str | None) -> str | None:
        if not token:
            return None
        presented = self.digest(token)
        for name, digest in self.state.token_digests().items():
            if hmac.compare_digest(presented, digest):
                return name
        return None

    def still_issued(self, name: str, digest: str) -> bool:
        return hmac.compare_digest(self.state.token_digests().get(name, ""), digest)


@dataclass
class _Session:
    name: str
    token_digest: str
    expires: float


class Sessions:
    """Server-side sessions for the UI's cookie: the cookie names one, signed; revoking the token ends it."""

    def __init__(self, tokens: TokenCheck, lifetime: float = SESSION_SECONDS):
        self._tokens = tokens
        self._lifetime = lifetime
        self._secret = secrets.token_bytes(32)  # per process: sessions end with the server
        self._open: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def _sign(self, session_id: str) -> str:
        return hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()

    def open(self, name: str, token: str) -> str:
        session_id = secrets.token_urlsafe(24)
        with self._lock:
            now = time.monotonic()
            self._open = {k: s for k, s in self._open.items() if s.expires > now}
            self._open[session_id] = _Session(name, self._tokens.digest(token), now + self._lifetime)
        return f"{session_id}.{self._sign(session_id)}"

    def who(self, cookie: str | None) -> str | None:
        session_id, _, signature = (cookie or "").partition(".")
        if not session_id or not signature.isascii() or not hmac.compare_digest(signature, self._sign(session_id)):
            return None
        with self._lock:
            session = self._open.get(session_id)
            if session is None or session.expires <= time.monotonic():
                self._open.pop(session_id, None)
                return None
        if not self._tokens.still_issued(session.name, session.token_digest):
            with self._lock:
                self._open.pop(session_id, None)
            return None
        return session.name


LOGIN_PAGE = """<!doctype html><meta charset="utf-8"><title>Redress codec login</title>
<h1>Redress codec server</h1><p>{message}</p>
<form method="post" action="/login"><label>Token <input name="token" type="password" autofocus></label>
<button>Sign in</button></form>
<p>Then, in the Temporal UI, open the codec server settings, enter this server's address and turn on
<em>Include cross-origin credentials</em>.</p>"""


class Refusal(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message


def declared_length(request: Request, limit: int) -> int:
    """The body's size as the client declares it, refused when missing, malformed, negative or too large."""
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        raise Refusal(411, "send a Content-Length (chunked bodies are not accepted)")
    text = request.headers.get("content-length")
    if text is None:
        raise Refusal(411, "a Content-Length is required")
    if not text.isdigit():
        raise Refusal(400, "Content-Length must be a non-negative whole number")
    length = int(text)
    if length > limit:
        raise Refusal(413, f"body too large (at most {limit} bytes)")
    return length


async def read_body(request: Request, limit: int) -> bytes:
    """The body, after its declared size passed; it must arrive whole within the app's body timeout."""
    length = declared_length(request, limit)
    seconds = request.app.state.body_seconds

    async def collect() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > length:
                raise Refusal(400, "the body is longer than its Content-Length")
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        return await asyncio.wait_for(collect(), seconds)
    except TimeoutError:
        raise Refusal(408, f"the body did not arrive within {seconds:g} seconds") from None


def create_app(
    encryption: codec.EncryptionCodec,
    tokens: TokenCheck,
    ui_origins: set[str],
    sessions: Sessions | None = None,
    body_seconds: float = BODY_SECONDS,
) -> Starlette:
    sessions = sessions or Sessions(tokens)

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if not origin or origin not in ui_origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Namespace",
            "Vary": "Origin",
        }

    def reply(request: Request, status: int, body: dict) -> JSONResponse:
        # a refusal closes the connection: a client refused before its body was read must not keep the
        # connection (and a slot) by trickling that body
        closing = {"Connection": "close"} if status >= 400 else {}
        return JSONResponse(body, status_code=status, headers={**cors(request), "Cache-Control": "no-store", **closing})

    def caller(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return tokens.who(auth[7:].strip())
        return sessions.who(request.cookies.get(COOKIE))

    def own_origin(request: Request) -> str:
        return f"{request.url.scheme}://{request.headers.get('host', '')}"

    async def preflight(request: Request) -> Response:
        return Response(status_code=204, headers=cors(request))  # preflights carry no credentials

    async def login_page(request: Request) -> HTMLResponse:
        page = LOGIN_PAGE.format(message="Sign in with a token from <code>redress keys codec-token</code>.")
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})

    async def login(request: Request) -> Response:
        origin = request.headers.get("origin")
        closing = {"Connection": "close"}
        if origin not in ({own_origin(request)} | ui_origins):
            log.warning("codec login refused: foreign origin")
            return HTMLResponse(
                LOGIN_PAGE.format(message="Sign in from this server's own page."), status_code=403, headers=closing
            )
        try:
            body = await read_body(request, LOGIN_FORM_MAX)
        except Refusal as refused:
            return HTMLResponse(
                LOGIN_PAGE.format(message=html.escape(refused.message)), status_code=refused.status, headers=closing
            )
        token = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0]
        who = tokens.who(token)
        if who is None:
            return HTMLResponse(LOGIN_PAGE.format(message="That token is not valid."), status_code=401, headers=closing)
        response = HTMLResponse(
            LOGIN_PAGE.format(message=f"Signed in as {html.escape(who)} for 12 hours."),
            headers={"Cache-Control": "no-store"},
        )
        response.set_cookie(
            COOKIE,
            sessions.open(who, token),
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        log.info("codec login", by=who)
        return response

    async def transform(request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ("encode", "decode"):
            return await not_found(request)
        bound_to = request.path_params.get("workflow_id")
        who = caller(request)
        if who is None:
            log.warning("codec request refused: no valid token or session", action=action)
            return reply(request, 401, {"error": "a valid codec token is required"})
        try:
            body = await read_body(request, MAX_BODY)
        except Refusal as refused:
            return reply(request, refused.status, {"error": refused.message})
        try:
            payloads = json_format.Parse(body, Payloads())
        except Exception as error:
            return reply(request, 400, {"error": f"not a Payloads message: {type(error).__name__}"})
        # binding decides how a payload is sealed; any holder of a token may open what it may read
        step = (
            (encryption.bound(bound_to) if bound_to else encryption).encode_one
            if action == "encode"
            else encryption.decode_one
        )
        looked_up: dict[str, bytes | None] = {}  # one key lookup per case per request, never kept (erasure)
        try:
            result = Payloads(payloads=[step(p, looked_up) for p in payloads.payloads])
        except codec.PersonalDataErased as erased:
            return reply(request, 410, {"error": str(erased)})
        except codec.KeyProblem as problem:
            return reply(request, 422, {"error": str(problem)})
        log.info(
            "codec request",
            action=action,
            by=who,
            payloads=len(result.payloads),
            bound=bool(bound_to),
            namespace=request.headers.get("x-namespace"),
        )
        return Response(
            json_format.MessageToJson(result),
            media_type="application/json",
            headers={**cors(request), "Cache-Control": "no-store"},
        )

    async def pseudonym(request: Request) -> Response:
        if caller(request) is None:
            return reply(request, 401, {"error": "a valid codec token is required"})
        try:
            body = json.loads(await read_body(request, 4096))
            customer_id = body["customer_id"]
            if not isinstance(customer_id, str) or not 0 < len(customer_id) <= 200:
                raise ValueError
        except Refusal as refused:
            return reply(request, refused.status, {"error": refused.message})
        except (ValueError, KeyError, TypeError, RecursionError):
            return reply(request, 400, {"error": 'send {"customer_id": "..."}'})
        ref = encryption.ring.pseudonym(customer_id)
        return reply(request, 200, {"pseudonym": ref, "workflow_id": customer_workflow_id(ref)})

    async def unavailable(request: Request, error: Exception) -> Response:
        """The shared state did not answer (token check, key lookup): say so; the caller tries again."""
        log.warning("codec request refused: the shared state did not answer")
        return reply(request, 503, {"error": str(error)})

    async def not_found(request: Request) -> Response:
        return reply(request, 404, {"error": "POST /encode, /decode (or /bind/<workflow id>/...); GET /login"})

    app = Starlette(
        routes=[
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/pseudonym", pseudonym, methods=["POST"]),
            Route("/{action:str}", preflight, methods=["OPTIONS"]),
            Route("/bind/{workflow_id:str}/{action:str}", preflight, methods=["OPTIONS"]),
            Route("/{action:str}", transform, methods=["POST"]),
            Route("/bind/{workflow_id:str}/{action:str}", transform, methods=["POST"]),
            Route("/{path:path}", not_found, methods=["GET", "POST"]),
        ],
        exception_handlers={StateUnavailable: unavailable},
    )
    app.state.body_seconds = body_seconds
    return app


class HeadDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, cutting off a connection that does not send a request head in time.

    uvicorn times out an idle keep-alive connection, but each byte resets that timer, and a
    new connection that trickles its head (or sends nothing) has none: such clients could
    hold every slot. Here each request head, the first and every one after a response,
    must arrive within `head_seconds`.
    """

    head_seconds = HEAD_SECONDS

    # uvicorn's own H11Protocol.connection_made narrows the argument the same way and ignores the same error
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def _arm(self) -> None:
        waiting_after = self.cycle  # None on a new connection; else the request just answered
        self.loop.call_later(self.head_seconds, self._head_overdue, waiting_after)

    def _head_overdue(self, waiting_after) -> None:
        if self.cycle is waiting_after and not self.transport.is_closing():  # no new request head since
            self.transport.close()


class CodecServer:
    """The codec HTTP server on a background thread (started by the worker in `make run`, or alone)."""

    def __init__(
        self,
        directory: Path,
        host: str = "127.0.0.1",
        port: int = 8081,
        ui_origins: set[str] | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        trusted_proxies: str | None = None,
        head_seconds: float = HEAD_SECONDS,
        body_seconds: float = BODY_SECONDS,
    ):
        encryption = codec.codec_of(codec.data_converter(directory))
        tokens = TokenCheck(directory)
        app = create_app(
            encryption,
            tokens,
            ui_origins or {"http://localhost:8233", "http://127.0.0.1:8233"},
            body_seconds=body_seconds,
        )
        protocol = type("HeadDeadlineHere", (HeadDeadline,), {"head_seconds": head_seconds})
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=protocol,
            lifespan="off",
            access_log=False,
            log_config=None,
            timeout_keep_alive=5,
            limit_concurrency=200,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            proxy_headers=trusted_proxies is not None,
            forwarded_allow_ips=trusted_proxies,
        )
        self.server = uvicorn.Server(config)
        self.tls = tls_cert is not None
        self.thread = threading.Thread(target=self.server.run, name="codec-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def __enter__(self) -> CodecServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise OSError("the codec server did not start (is the port taken?)")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
