"""The contract holds for clients that are not Python: the `temporal` CLI sends plain JSON."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import codec
from tests.test_encryption import stored_history
from tests.conftest import APPROVER_KEYS, ROOT, complaint, open_case, stage_is
from worker import temporal_binary
from workflows.contract import TASK_QUEUE, RemedyProposal


async def temporal_cli(env, codec: dict[str, str], *args: str) -> tuple[int, str, str]:
    """The `temporal` CLI as any non-Python service would use it: payloads go through our codec server."""
    process = await asyncio.create_subprocess_exec(
        temporal_binary(), *args, "--address", env.client.service_client.config.target_host,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **codec},
    )
    out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


async def test_temporal_cli_starts_a_complaint_and_records_a_response(run_worker, env, codec_endpoint):
    async with run_worker() as redress:
        data = complaint(text="I want a refund, charged twice")
        cid = data["complaint_id"]
        code, _, err = await temporal_cli(
            env, codec_endpoint, "workflow", "start", "--type", "Complaint", "--task-queue", redress.task_queue,
            "--workflow-id", f"complaint-{cid}", "--input", json.dumps(data, ensure_ascii=False),
        )
        assert code == 0, err
        status = await stage_is(redress, cid, "acknowledged")
        assert status.queue == "billing"
        started = (await stored_history(env, f"complaint-{cid}")).events[0]
        sent = started.workflow_execution_started_event_attributes.input.payloads[0]
        assert sent.metadata["encoding"] == codec.ENCODING  # encrypted by the codec server before it was sent

        code, out, err = await temporal_cli(
            env, codec_endpoint, "workflow", "update", "execute", "--workflow-id", f"complaint-{cid}",
            "--name", "record_response", "--input", json.dumps({"agent": "li.na"}),
        )
        assert code == 0, err
        assert (await redress.status(cid)).stage.value == "in_progress"

        code, out, err = await temporal_cli(
            env, codec_endpoint, "workflow", "update", "execute", "--workflow-id", f"complaint-{cid}",
            "--name", "customer_feedback", "--input", json.dumps({"score": 5}),
        )
        assert code != 0 and "feedback is taken after" in out + err

        code, out, _ = await temporal_cli(env, codec_endpoint, "workflow", "query", "--workflow-id", f"complaint-{cid}",
                                          "--type", "status", "--output", "json")
        assert code == 0 and '"in_progress"' in out


def documented_block(marker: str) -> str:
    """The shell block after `<!-- tested: marker -->` in docs/contract.md: the docs are run, not just read."""
    text = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    after = text.split(f"<!-- tested: {marker} -->", 1)[1]
    return after.split("```sh\n", 1)[1].split("```", 1)[0]


@pytest.mark.skipif(not (shutil.which("jq") and shutil.which("openssl")), reason="the documented way uses jq and openssl")
async def test_documented_shell_approval_with_the_temporal_cli_and_openssl(run_worker, env, tmp_path, codec_endpoint):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        await redress.propose_remedy(cid, RemedyProposal(kind="refund", amount=Decimal("800.50"), currency="CNY",
                                                         reason="ruined birthday", proposed_by="li.na"))
        key = tmp_path / "wang.fang.pem"
        key.write_bytes(APPROVER_KEYS["wang.fang"].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        environment = {**os.environ, **codec_endpoint, "CID": cid, "KEY": str(key),
                       "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                       "PATH": f"{Path(temporal_binary()).parent}{os.pathsep}{os.environ['PATH']}"}
        shell = await asyncio.create_subprocess_exec(  # not subprocess.run: the worker shares this event loop
            "bash", "-euo", "pipefail", "-c", documented_block("approve-with-temporal-cli"), cwd=tmp_path,
            env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(shell.communicate(), timeout=60)
        assert shell.returncode == 0, (out + err).decode()
        status = await redress.status(cid)
    assert status.remedies[0].status.value in ("approved", "executed")
    assert status.remedies[0].decided_by == "wang.fang"


async def test_documented_purchase_signal_with_the_temporal_cli(run_worker, env, codec_endpoint):
    async with run_worker(task_queue=TASK_QUEUE) as redress:
        environment = {**os.environ, **codec_endpoint, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
                       "PATH": f"{Path(temporal_binary()).parent}{os.pathsep}{os.environ['PATH']}"}
        shell = await asyncio.create_subprocess_exec(
            "bash", "-euo", "pipefail", "-c", documented_block("purchase-with-temporal-cli"), env=environment,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(shell.communicate(), timeout=60)
        assert shell.returncode == 0, (out + err).decode()
        record = await redress.customer_record("crm-7731")
    assert record.last_purchase_at is not None and '"last_purchase_at"' in out.decode()
