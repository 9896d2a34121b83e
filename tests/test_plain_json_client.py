"""The contract holds for clients that are not Python: the `temporal` CLI sends plain JSON."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import complaint, stage_is
from worker import temporal_binary


async def temporal_cli(env, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        temporal_binary(), *args, "--address", env.client.service_client.config.target_host,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


async def test_temporal_cli_starts_a_complaint_and_records_a_response(run_worker, env):
    async with run_worker() as redress:
        data = complaint(text="I want a refund, charged twice")
        cid = data["complaint_id"]
        code, _, err = await temporal_cli(
            env, "workflow", "start", "--type", "Complaint", "--task-queue", redress.task_queue,
            "--workflow-id", f"complaint-{cid}", "--input", json.dumps(data, ensure_ascii=False),
        )
        assert code == 0, err
        status = await stage_is(redress, cid, "acknowledged")
        assert status.queue == "billing"

        code, out, err = await temporal_cli(
            env, "workflow", "update", "execute", "--workflow-id", f"complaint-{cid}",
            "--name", "record_response", "--input", json.dumps({"agent": "li.na"}),
        )
        assert code == 0, err
        assert (await redress.status(cid)).stage.value == "in_progress"

        code, out, err = await temporal_cli(
            env, "workflow", "update", "execute", "--workflow-id", f"complaint-{cid}",
            "--name", "customer_feedback", "--input", json.dumps({"score": 5}),
        )
        assert code != 0 and "feedback is taken after" in out + err

        code, out, _ = await temporal_cli(env, "workflow", "query", "--workflow-id", f"complaint-{cid}",
                                          "--type", "status", "--output", "json")
        assert code == 0 and '"in_progress"' in out
