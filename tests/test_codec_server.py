"""The codec server decrypts for token holders only, for the Temporal CLI and the Web UI (CORS, cookie login)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import sys
import time
from datetime import UTC
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from redress import codec, codec_server
from redress.client import InsecureConnection, check_transport
from redress.contract import Withdrawal, workflow_id_for
from tests.helpers.cases import stage_is
from tests.helpers.histories import payloads_in, personal_complaint, stored_history
from tests.helpers.processes import ROOT
from worker import temporal_binary

UI = "http://localhost:8233"


async def test_codec_server_decrypts_for_token_holders_only(run_worker, env, tmp_path):
    keys = codec.keys_dir()
    token = codec_server.issue_token(keys, "auditor.kim")
    data, _ = personal_complaint()
    workflow_id = workflow_id_for(data["complaint_id"])
    async with run_worker() as redress:
        await redress.submit(data)
        await stage_is(redress, data["complaint_id"], "acknowledged")
        await redress.withdraw(data["complaint_id"], Withdrawal(by="customer"))
    start = payloads_in((await stored_history(env, workflow_id)).events[0])[0]
    body = json_format.MessageToJson(Payloads(payloads=[start]))

    with codec_server.CodecServer(keys, port=0, ui_origins={UI}) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.post("/decode", content=body)).status_code == 401
            wrong = await http.post("/decode", content=body, headers={"Authorization": "Bearer not-a-token"})
            assert wrong.status_code == 401 and "token" in wrong.json()["error"]

            decoded = await http.post("/decode", content=body, headers={"Authorization": f"Bearer {token}"})
            assert decoded.status_code == 200
            plain = json_format.Parse(decoded.text, Payloads()).payloads[0]
            assert data["customer"]["email"] in plain.data.decode()

            bad = await http.post("/decode", content=b"{not json", headers={"Authorization": f"Bearer {token}"})
            assert bad.status_code == 400 and "Payloads" in bad.json()["error"]

            # the UI: a preflight from its origin is allowed, with credentials; another origin gets no CORS grant
            preflight = await http.options("/decode", headers={"Origin": UI, "Access-Control-Request-Method": "POST"})
            assert preflight.headers["access-control-allow-origin"] == UI
            assert preflight.headers["access-control-allow-credentials"] == "true"
            assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
            stranger = await http.options("/decode", headers={"Origin": "http://evil.example"})
            assert "access-control-allow-origin" not in stranger.headers

            # a person signs in once, from the login page; the cookie then authorises the UI's requests
            own = {"Origin": server.url}
            assert (await http.post("/login", data={"token": "guess"}, headers=own)).status_code == 401
            login = await http.post("/login", data={"token": token}, headers=own)
            assert login.status_code == 200 and "auditor.kim" in login.text
            cookie = login.headers["set-cookie"]
            assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie  # plain HTTP
            assert token not in cookie  # the cookie names a session; it is not the token
            by_cookie = await http.post("/decode", content=body, headers={"Origin": UI})
            assert by_cookie.status_code == 200

            # encode (for clients without the codec) seals under the deployment key
            plain_payloads = json_format.MessageToJson(Payloads(payloads=[plain]))
            sealed = json_format.Parse(
                (await http.post("/encode", content=plain_payloads, headers={"Authorization": f"Bearer {token}"})).text,
                Payloads(),
            ).payloads[0]
            assert sealed.metadata["encoding"] == codec.ENCODING and codec.SUBJECT not in sealed.metadata

            # the temporal CLI decodes through it too
            command = [
                temporal_binary(),
                "workflow",
                "show",
                "-w",
                workflow_id,
                "--output",
                "json",
                "--address",
                env.client.service_client.config.target_host,
                "--codec-endpoint",
                f"{server.url}/bind/{workflow_id}",
                "--codec-auth",
                f"Bearer {token}",
            ]
            process = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            shown = json.loads(out)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
            assert base64.b64decode(shown["metadata"]["encoding"]) == b"json/plain"
            assert data["customer"]["email"] in base64.b64decode(shown["data"]).decode()

            # revoked: refused again, without a restart, by token and by the session it opened
            assert codec_server.revoke_token(keys, "auditor.kim")
            assert (
                await http.post("/decode", content=body, headers={"Authorization": f"Bearer {token}"})
            ).status_code == 401
            assert (await http.post("/decode", content=body, headers={"Origin": UI})).status_code == 401
    assert token not in (keys / "codec-tokens.json").read_text()  # only the hash is stored


def test_plaintext_to_a_remote_server_is_refused_unless_allowed(monkeypatch):
    monkeypatch.delenv("REDRESS_ALLOW_PLAINTEXT", raising=False)
    for local in ("localhost:7233", "127.0.0.1:7233", "[::1]:7233"):
        check_transport({"target_host": local})
    try:
        check_transport({"target_host": "temporal.internal.example:7233"})
    except InsecureConnection as refused:
        assert "TEMPORAL_TLS" in str(refused) and "REDRESS_ALLOW_PLAINTEXT" in str(refused)
    else:
        raise AssertionError("plaintext to a remote server was accepted")
    check_transport({"target_host": "temporal.internal.example:7233", "tls": True})
    monkeypatch.setenv("REDRESS_ALLOW_PLAINTEXT", "1")
    check_transport({"target_host": "temporal.internal.example:7233"})


async def test_the_worker_will_not_start_against_a_remote_server_without_tls(tmp_path):
    environment = {
        **os.environ,
        "TEMPORAL_ADDRESS": "temporal.internal.example:7233",
        "REDRESS_DATA": str(tmp_path / "data"),
        "REDRESS_ALLOW_PLAINTEXT": "",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redress",
        "worker",
        env=environment,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode != 0
    assert "refusing to connect to temporal.internal.example:7233 without TLS" in err.decode()


def raw_request(url: str, head: bytes, body: bytes = b"", wait: float = 5.0) -> bytes:
    """Send bytes as they are (no client library fixes them up) and read what comes back until the server closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(head + body)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and (b"Content-Length: 0" in answer or answer.endswith(b"}")):
                    break
        except TimeoutError:
            pass
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def test_credentials_and_size_are_checked_before_any_body_is_read(tmp_path):
    keys = codec.keys_dir()
    token = codec_server.issue_token(keys, "size.checker")
    auth = f"Authorization: Bearer {token}\r\n".encode()
    with codec_server.CodecServer(keys, port=0, head_seconds=1, body_seconds=1) as server:
        started = time.monotonic()
        # no credentials: refused at once, though the declared body never comes
        answer = raw_request(server.url, b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        assert status_of(answer) == 401 and time.monotonic() - started < 1
        for length, expected in (
            (None, 411),
            (b"-1", 400),
            (b"abc", 400),
            (b"12e3", 400),
            (str(codec_server.MAX_BODY + 1).encode(), 413),
        ):
            header = b"" if length is None else b"Content-Length: " + length + b"\r\n"
            answer = raw_request(server.url, b"POST /decode HTTP/1.1\r\nHost: x\r\n" + auth + header + b"\r\n")
            assert status_of(answer) == expected, (length, answer[:200])
        # a body that trickles is cut off at the body timeout; a head that trickles, at the head timeout
        answer = raw_request(
            server.url, b"POST /decode HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 100\r\n\r\n", b'{"payl'
        )
        assert status_of(answer) == 408
        started = time.monotonic()
        assert raw_request(server.url, b"POST /deco", wait=5) == b"" and time.monotonic() - started < 3
        # and the server still serves
        with httpx.Client(base_url=server.url) as http:
            body = json_format.MessageToJson(Payloads())
            assert http.post("/decode", content=body, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_login_takes_a_form_only_from_its_own_page_and_sessions_end(tmp_path):
    keys = codec.keys_dir()
    token = codec_server.issue_token(keys, "login.checker")
    with codec_server.CodecServer(keys, port=0, ui_origins={UI}) as server, httpx.Client(base_url=server.url) as http:
        for origin in ({"Origin": "http://evil.example"}, {}):  # a cross-site form, or no origin at all
            refused = http.post("/login", data={"token": token}, headers=origin)
            assert refused.status_code == 403 and "set-cookie" not in refused.headers
        assert http.post("/login", data={"token": token}, headers={"Origin": UI}).status_code == 200
        session = http.cookies[codec_server.COOKIE]
        body = json_format.MessageToJson(Payloads())
        assert http.post("/decode", content=body).status_code == 200
        forged = session.rsplit(".", 1)[0] + "." + "0" * 64  # the same session id, another signature
        http.cookies.set(codec_server.COOKIE, forged)
        assert http.post("/decode", content=body).status_code == 401


def test_sessions_expire_on_the_server(tmp_path):
    tokens = codec_server.TokenCheck(codec.keys_dir())
    token = codec_server.issue_token(codec.keys_dir(), "short.session")
    sessions = codec_server.Sessions(tokens, lifetime=0.2)
    cookie = sessions.open("short.session", token)
    assert sessions.who(cookie) == "short.session"
    time.sleep(0.3)
    assert sessions.who(cookie) is None  # whatever the browser still holds


def test_over_tls_the_session_cookie_is_secure(tmp_path):
    cert, key = self_signed(tmp_path)
    keys = codec.keys_dir()
    token = codec_server.issue_token(keys, "tls.user")
    with codec_server.CodecServer(keys, port=0, tls_cert=str(cert), tls_key=str(key)) as server:
        assert server.url.startswith("https://")
        with httpx.Client(base_url=server.url, verify=False) as http:
            login = http.post("/login", data={"token": token}, headers={"Origin": server.url})
    assert login.status_code == 200 and "Secure" in login.headers["set-cookie"]


def test_bound_encoding_and_pseudonyms_for_plain_clients(tmp_path):
    keys = codec.keys_dir()
    token = codec_server.issue_token(keys, "plain.client")
    auth = {"Authorization": f"Bearer {token}"}
    plain = Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=b'{"by": "customer"}')])
    with codec_server.CodecServer(keys, port=0) as server, httpx.Client(base_url=server.url) as http:
        sealed = json_format.Parse(
            http.post("/bind/customer-p-1/encode", content=json_format.MessageToJson(plain), headers=auth).text,
            Payloads(),
        ).payloads[0]
        assert sealed.metadata[codec.BOUND] == b"customer-p-1" and codec.SUBJECT not in sealed.metadata
        ring = codec.KeyRing.load(keys)
        assert (
            codec.EncryptionCodec(ring, codec.SubjectKeys(keys / "subjects.sqlite", ring), workflow_id="customer-p-1")
            .decode_one(sealed)
            .data
            == b'{"by": "customer"}'
        )
        with pytest.raises(codec.NotOurs, match="another workflow"):
            codec.EncryptionCodec(
                ring, codec.SubjectKeys(keys / "subjects.sqlite", ring), workflow_id="customer-p-2"
            ).decode_one(sealed)
        answer = http.post("/pseudonym", json={"customer_id": "pat@example.com"}, headers=auth).json()
        assert answer["pseudonym"] == ring.pseudonym("pat@example.com") and "pat" not in answer["workflow_id"]
        assert http.post("/pseudonym", json={"customer_id": "x"}).status_code == 401


def self_signed(folder: Path) -> tuple[Path, Path]:
    from datetime import datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_a_refused_or_idle_client_cannot_hold_a_connection(tmp_path):
    """From review: 199 connections that were refused but kept trickling bytes locked everyone out (503)."""
    keys = codec.keys_dir()
    token = codec_server.issue_token(keys, "slot.checker")
    with codec_server.CodecServer(keys, port=0, head_seconds=1, body_seconds=1) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as refused:
            refused.sendall(b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 8000000\r\n\r\n")
            answer = refused.recv(65536)
            assert status_of(answer) == 401 and b"connection: close" in answer.lower()
            assert _closed(refused)  # the server hangs up instead of waiting for the body
        with socket.create_connection((host, int(port)), timeout=5) as kept:
            kept.sendall(
                b"POST /decode HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + token.encode()
                + b"\r\nContent-Length: 2\r\n\r\n{}"
            )
            assert status_of(kept.recv(65536)) == 200
            started = time.monotonic()
            for byte in b"POST /de":  # the next head, a byte at a time
                kept.sendall(bytes([byte]))
                time.sleep(0.3)
                if _closed(kept, wait=0.01):
                    break
            assert _closed(kept) and time.monotonic() - started < 4


def test_odd_cookies_and_bodies_are_refused_not_crashed(tmp_path):
    keys = codec.keys_dir()
    token = codec_server.issue_token(keys, "odd.client")
    with codec_server.CodecServer(keys, port=0) as server, httpx.Client(base_url=server.url) as http:
        odd = raw_request(
            server.url,
            b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nCookie: "
            + codec_server.COOKIE.encode()
            + "=abc.\u00e9\u00e9".encode()
            + b"\r\n\r\n",
            b"{}",
        )
        assert status_of(odd) == 401
        deep = b'{"customer_id": ' + b"[" * 1500 + b"]" * 1500 + b"}"  # deeper than the JSON parser goes
        answer = http.post("/pseudonym", content=deep, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 400


def _closed(connection: socket.socket, wait: float = 3.0) -> bool:
    """Whether the server hangs up within `wait` seconds (what it still sends before that is read and dropped)."""
    deadline = time.monotonic() + wait
    try:
        while (left := deadline - time.monotonic()) > 0:
            connection.settimeout(left)
            if connection.recv(65536) == b"":
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return False
