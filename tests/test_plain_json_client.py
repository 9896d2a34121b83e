"""The contract holds for clients that are not Python: the `temporal` CLI sends plain JSON."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from redress import codec
from redress.contract import TASK_QUEUE, RemedyProposal
from tests.helpers.cases import complaint, open_case, stage_is
from tests.helpers.histories import stored_history
from tests.helpers.processes import ROOT
from tests.helpers.rules import APPROVER_KEYS
from tests.helpers.serving import serving
from worker import temporal_binary


async def temporal_cli(env, codec: dict[str, str], workflow_id: str | None, *args: str) -> tuple[int, str, str]:
    """The `temporal` CLI as any non-Python service would use it: payloads go through our codec server,
    bound to the workflow they are for (none: plain JSON, as a client that skips the codec sends)."""
    bound = (
        {
            "TEMPORAL_CODEC_ENDPOINT": f"{codec['REDRESS_CODEC']}/bind/{workflow_id}",
            "TEMPORAL_CODEC_AUTH": codec["TEMPORAL_CODEC_AUTH"],
        }
        if workflow_id
        else {}
    )
    process = await asyncio.create_subprocess_exec(
        temporal_binary(),
        *args,
        "--address",
        env.client.service_client.config.target_host,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **bound},
    )
    out, err = await process.communicate()
    return await process.wait(), out.decode(), err.decode()


async def test_temporal_cli_starts_a_complaint_and_records_a_response(run_worker, env, codec_endpoint):
    async with run_worker() as redress:
        data = complaint(text="I want a refund, charged twice")
        cid = data["complaint_id"]
        workflow_id = f"complaint-{cid}"
        code, _, err = await temporal_cli(
            env,
            codec_endpoint,
            workflow_id,
            "workflow",
            "start",
            "--type",
            "Complaint",
            "--task-queue",
            redress.task_queue,
            "--workflow-id",
            workflow_id,
            "--input",
            json.dumps(data, ensure_ascii=False),
        )
        assert code == 0, err
        status = await stage_is(redress, cid, "acknowledged")
        assert status.queue == "billing"
        started = (await stored_history(env, workflow_id)).events[0]
        sent = started.workflow_execution_started_event_attributes.input.payloads[0]
        assert sent.metadata["encoding"] == codec.ENCODING  # encrypted by the codec server before it was sent
        assert sent.metadata[codec.SUBJECT] == workflow_id.encode()  # with the case's own key: erasure covers it

        code, out, err = await temporal_cli(
            env,
            codec_endpoint,
            workflow_id,
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            workflow_id,
            "--name",
            "record_response",
            "--input",
            json.dumps({"agent": "li.na"}),
        )
        assert code == 0, err
        assert (await redress.status(cid)).stage.value == "in_progress"

        code, out, err = await temporal_cli(
            env,
            codec_endpoint,
            workflow_id,
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            workflow_id,
            "--name",
            "customer_feedback",
            "--input",
            json.dumps({"score": 5}),
        )
        assert code != 0 and "feedback is taken after" in out + err

        # plain JSON, and a payload sealed for another case, are refused with the reason; nothing changes
        code, out, err = await temporal_cli(
            env,
            codec_endpoint,
            None,
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            workflow_id,
            "--name",
            "withdraw",
            "--input",
            json.dumps({"by": "customer"}),
        )
        assert code != 0 and "type: Refused" in out + err  # the reason itself is sealed: this client cannot read it
        code, out, err = await temporal_cli(
            env,
            codec_endpoint,
            "complaint-someone-else",
            "workflow",
            "update",
            "execute",
            "--workflow-id",
            workflow_id,
            "--name",
            "withdraw",
            "--input",
            json.dumps({"by": "customer"}),
        )
        assert code != 0 and "sealed for another workflow" in out + err

        code, out, _ = await temporal_cli(
            env,
            codec_endpoint,
            workflow_id,
            "workflow",
            "query",
            "--workflow-id",
            workflow_id,
            "--type",
            "status",
            "--output",
            "json",
        )
        assert code == 0 and '"in_progress"' in out


async def test_plaintext_clients_are_served_only_with_the_documented_switch(env, tmp_path, peer, rules_dir):
    """REDRESS_ACCEPT_PLAIN_PAYLOADS=1 on the worker: a client written before binding is served again."""
    from temporalio.client import Client
    from temporalio.common import RawValue

    queue = f"redress-plain-{uuid.uuid4().hex[:6]}"
    plain = await Client.connect(env.client.service_client.config.target_host)  # no codec at all
    legacy = codec.data_converter(worker=True, accept_plain=True)
    async with serving(
        Client(**{**env.client.config(), "data_converter": legacy}),
        rules_dir,
        tmp_path / "data",
        peer.url,
        task_queue=queue,
    ) as redress:
        data = complaint()
        await plain.start_workflow("Complaint", data, id=f"complaint-{data['complaint_id']}", task_queue=queue)
        await stage_is(redress, data["complaint_id"], "acknowledged")
        await plain.get_workflow_handle(f"complaint-{data['complaint_id']}").execute_update(
            "record_response", {"agent": "li.na"}, result_type=RawValue
        )  # the answer is sealed: not for it
        assert (await redress.status(data["complaint_id"])).stage.value == "in_progress"


def documented_block(marker: str) -> str:
    """The shell block after `<!-- tested: marker -->` in docs/contract.md: the docs are run, not just read."""
    text = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    after = text.split(f"<!-- tested: {marker} -->", 1)[1]
    return after.split("```sh\n", 1)[1].split("```", 1)[0]


@pytest.mark.skipif(
    not (shutil.which("jq") and shutil.which("openssl")), reason="the documented way uses jq and openssl"
)
async def test_documented_shell_approval_with_the_temporal_cli_and_openssl(run_worker, env, tmp_path, codec_endpoint):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        await redress.propose_remedy(
            cid,
            RemedyProposal(
                kind="refund", amount=Decimal("800.50"), currency="CNY", reason="ruined birthday", proposed_by="li.na"
            ),
        )
        key = tmp_path / "wang.fang.pem"
        key.write_bytes(
            APPROVER_KEYS["wang.fang"].private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        environment = {
            **os.environ,
            **codec_endpoint,
            "CID": cid,
            "KEY": str(key),
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "PATH": f"{Path(temporal_binary()).parent}{os.pathsep}{os.environ['PATH']}",
        }
        shell = await asyncio.create_subprocess_exec(  # not subprocess.run: the worker shares this event loop
            "bash",
            "-euo",
            "pipefail",
            "-c",
            documented_block("approve-with-temporal-cli"),
            cwd=tmp_path,
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(shell.communicate(), timeout=60)
        assert shell.returncode == 0, (out + err).decode()
        status = await redress.status(cid)
    assert status.remedies[0].status.value in ("approved", "executed")
    assert status.remedies[0].decided_by == "wang.fang"


async def test_documented_purchase_signal_with_the_temporal_cli(run_worker, env, codec_endpoint):
    async with run_worker(task_queue=TASK_QUEUE) as redress:
        environment = {
            **os.environ,
            **codec_endpoint,
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "PATH": f"{Path(temporal_binary()).parent}{os.pathsep}{os.environ['PATH']}",
        }
        shell = await asyncio.create_subprocess_exec(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            documented_block("purchase-with-temporal-cli"),
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(shell.communicate(), timeout=60)
        assert shell.returncode == 0, (out + err).decode()
        record = await redress.customer_record("crm-7731")
    assert record.last_purchase_at is not None and '"last_purchase_at"' in out.decode()
