"""The codec server decrypts for token holders only, for the Temporal CLI and the Web UI (CORS, cookie login)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys

import httpx
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

import codec
import codec_server
from client import InsecureConnection, check_transport
from tests.conftest import ROOT, stage_is
from tests.test_encryption import payloads_in, personal_complaint, stored_history
from worker import temporal_binary
from workflows.contract import Withdrawal, workflow_id_for

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

            # a person signs in once; the cookie then authorises the UI's requests
            assert (await http.post("/login", data={"token": "guess"})).status_code == 401
            login = await http.post("/login", data={"token": token})
            assert login.status_code == 200 and "auditor.kim" in login.text
            assert "HttpOnly" in login.headers["set-cookie"]
            by_cookie = await http.post("/decode", content=body, headers={"Origin": UI})
            assert by_cookie.status_code == 200

            # encode (for clients without the codec) seals under the deployment key
            plain_payloads = json_format.MessageToJson(Payloads(payloads=[plain]))
            sealed = json_format.Parse((await http.post("/encode", content=plain_payloads, headers={
                "Authorization": f"Bearer {token}"})).text, Payloads()).payloads[0]
            assert sealed.metadata["encoding"] == codec.ENCODING and codec.SUBJECT not in sealed.metadata

            # the temporal CLI decodes through it too
            command = [temporal_binary(), "workflow", "show", "-w", workflow_id, "--output", "json",
                       "--address", env.client.service_client.config.target_host,
                       "--codec-endpoint", server.url, "--codec-auth", f"Bearer {token}"]
            process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                           stderr=asyncio.subprocess.PIPE)
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            shown = json.loads(out)["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]
            assert base64.b64decode(shown["metadata"]["encoding"]) == b"json/plain"
            assert data["customer"]["email"] in base64.b64decode(shown["data"]).decode()

            # revoked: refused again, without a restart
            assert codec_server.revoke_token(keys, "auditor.kim")
            assert (await http.post("/decode", content=body, headers={"Authorization": f"Bearer {token}"})
                    ).status_code == 401
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
    environment = {**os.environ, "TEMPORAL_ADDRESS": "temporal.internal.example:7233",
                   "REDRESS_DATA": str(tmp_path / "data"), "REDRESS_ALLOW_PLAINTEXT": ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "worker", env=environment, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode != 0
    assert "refusing to connect to temporal.internal.example:7233 without TLS" in err.decode()
