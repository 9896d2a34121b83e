"""Remote codec server: lets the Temporal Web UI and CLI show decrypted payloads to authorised people only.

Temporal's codec protocol: POST {endpoint}/decode and {endpoint}/encode with a
Payloads message as protobuf JSON. Every POST must carry a token issued by
`redress keys codec-token NAME`, either as `Authorization: Bearer <token>` (the
CLI's --codec-auth, scripts, or a UI behind SSO passing its access token) or as
the cookie set by GET/POST /login (the UI with "include cross-origin
credentials"). Only token hashes are stored, so reading keys/ does not give a
token. Each decode is logged with the token's name, never with the payloads.

Encoding here has no workflow context, so payloads it encodes go under the
deployment key (for plain-JSON clients that want their input encrypted).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
import threading
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import structlog
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

import codec

log = structlog.get_logger("redress.codec_server")

COOKIE = "redress_codec"
MAX_BODY = 8 * 1024 * 1024


def tokens_path(directory: Path) -> Path:
    return directory / "codec-tokens.json"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(directory: Path, name: str) -> str:
    """A new token for NAME (replacing NAME's old one); only its hash is kept."""
    path = tokens_path(directory)
    tokens = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    token = secrets.token_urlsafe(32)
    tokens[name] = _digest(token)
    directory.mkdir(parents=True, exist_ok=True)
    codec.write_private(path, json.dumps(tokens, indent=2))
    return token


def revoke_token(directory: Path, name: str) -> bool:
    path = tokens_path(directory)
    tokens = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if tokens.pop(name, None) is None:
        return False
    codec.write_private(path, json.dumps(tokens, indent=2))
    return True


class TokenCheck:
    """Re-reads the token file on every check, so issuing or revoking needs no restart."""

    def __init__(self, directory: Path):
        self.path = tokens_path(directory)

    def who(self, token: str | None) -> str | None:
        if not token or not self.path.exists():
            return None
        presented = _digest(token)
        tokens = json.loads(self.path.read_text(encoding="utf-8"))
        for name, digest in tokens.items():
            if hmac.compare_digest(presented, digest):
                return name
        return None


LOGIN_PAGE = """<!doctype html><meta charset="utf-8"><title>Redress codec login</title>
<h1>Redress codec server</h1><p>{message}</p>
<form method="post" action="/login"><label>Token <input name="token" type="password" autofocus></label>
<button>Sign in</button></form>
<p>Then, in the Temporal UI, open the codec server settings, enter this server's address and turn on
<em>Include cross-origin credentials</em>.</p>"""


def make_handler(encryption: codec.EncryptionCodec, tokens: TokenCheck, ui_origins: set[str]):
    class Handler(BaseHTTPRequestHandler):
        server_version = "redress-codec"

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's name
            pass  # access lines would carry paths and addresses only; our own log lines say who decoded

        def _cors(self) -> None:
            origin = self.headers.get("Origin")
            if origin and origin in ui_origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
                self.send_header("Vary", "Origin")

        def _reply(self, status: HTTPStatus, body: bytes, content_type: str = "application/json",
                   headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: HTTPStatus, message: str) -> None:
            self._reply(status, json.dumps({"error": message}).encode())

        def _presented_token(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                return auth[7:].strip()
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            return cookie[COOKIE].value if COOKIE in cookie else None

        def _body(self) -> bytes | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
                return None
            return self.rfile.read(length)

        def do_OPTIONS(self) -> None:  # noqa: N802 - the stdlib's name; preflights carry no credentials
            self._reply(HTTPStatus.OK, b"", "text/plain")

        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?")[0].endswith("/login"):
                page = LOGIN_PAGE.format(message="Sign in with a token from <code>redress keys codec-token</code>.")
                self._reply(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
            else:
                self._error(HTTPStatus.NOT_FOUND, "POST /encode or /decode; GET /login")

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.split("?")[0].rstrip("/")
            body = self._body()
            if body is None:
                return
            if path.endswith("/login"):
                return self._login(body)
            if not (path.endswith("/encode") or path.endswith("/decode")):
                return self._error(HTTPStatus.NOT_FOUND, "POST /encode or /decode")
            who = tokens.who(self._presented_token())
            if who is None:
                log.warning("codec request refused: no valid token", path=path)
                return self._error(HTTPStatus.UNAUTHORIZED, "a valid codec token is required")
            try:
                payloads = json_format.Parse(body, Payloads())
            except json_format.ParseError as error:
                return self._error(HTTPStatus.BAD_REQUEST, f"not a Payloads message: {error}")
            transform = encryption.encode_one if path.endswith("/encode") else encryption.decode_one
            try:
                result = Payloads(payloads=[transform(p) for p in payloads.payloads])
            except codec.PersonalDataErased as erased:
                return self._error(HTTPStatus.GONE, str(erased))
            except codec.KeyProblem as problem:
                return self._error(HTTPStatus.UNPROCESSABLE_ENTITY, str(problem))
            log.info("codec request", action=path.rsplit("/", 1)[1], by=who, payloads=len(result.payloads),
                     namespace=self.headers.get("X-Namespace"))
            self._reply(HTTPStatus.OK, json_format.MessageToJson(result).encode())

        def _login(self, body: bytes) -> None:
            token = (parse_qs(body.decode("utf-8", "replace")).get("token") or [""])[0]
            who = tokens.who(token)
            if who is None:
                page = LOGIN_PAGE.format(message="That token is not valid.")
                return self._reply(HTTPStatus.UNAUTHORIZED, page.encode(), "text/html; charset=utf-8")
            cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age=43200"
            page = LOGIN_PAGE.format(message=f"Signed in as {html.escape(who)} for 12 hours.")
            log.info("codec login", by=who)
            self._reply(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8", {"Set-Cookie": cookie})

    return Handler


class CodecServer:
    """The codec HTTP server on a background thread (started by the worker in `make run`, or alone)."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 8081,
                 ui_origins: set[str] | None = None):
        converter = codec.data_converter(directory)
        handler = make_handler(codec.codec_of(converter), TokenCheck(directory),
                               ui_origins or {"http://localhost:8233", "http://127.0.0.1:8233"})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="codec-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> CodecServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
