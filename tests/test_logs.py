"""No personal text in logs: a whole lifecycle with a marker in every free-text field, and not one in any log line.

The worker is a real process at DEBUG level (the SDK's own log lines included), the
commands are the real `redress` CLI, the peers are real HTTP servers, and one of them
refuses a notice with an answer that echoes what it was sent. Every field a customer
or agent writes carries its own marker: complaint text, name, phone, e-mail, metadata,
the agent's response and question, the customer's reply, the remedy's reason, the
approver's note, the summary, the survey comment, the withdrawal's reason, and values
that are refused as invalid. The worker's log and every command's stderr are searched.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

from cryptography.hazmat.primitives import serialization
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.common import RawValue

from redress import codec
from redress.client import RedressClient
from tests.helpers.cases import complaint, eventually, stage_is
from tests.helpers.peer import Peer
from tests.helpers.processes import ROOT, start_worker, stop, wait_for_line
from tests.helpers.rules import APPROVER_KEYS, write_rules


def markers() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    digits = str(int(tag, 16) % 10**8).zfill(8)
    found = {
        field: f"MK{field}{tag}"
        for field in (
            "text",
            "name",
            "metadata",
            "item",
            "response",
            "question",
            "reply",
            "reason",
            "note",
            "summary",
            "comment",
            "withdrawal",
            "again",
            "bad_currency",
            "peer_reason",
            "raw_signal",
            "metadata_key",
        )
    }
    found["phone"] = f"+86 139 {digits[:4]} {digits[4:]}"
    found["email"] = f"mk{tag}@example.org"
    found["bad_phone"] = f"MKbadphone{tag}"
    return found


async def test_a_whole_lifecycle_leaves_no_personal_text_in_any_log_line(env, tmp_path):
    marks = markers()
    queue = f"redress-logs-{uuid.uuid4().hex[:6]}"
    keys = tmp_path / "signing-keys"
    keys.mkdir()
    for name in ("li.na", "wang.fang"):
        (keys / f"{name}.pem").write_bytes(
            APPROVER_KEYS[name].private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    address = env.client.service_client.config.target_host
    stderr: list[str] = []

    async def cli(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "redress",
            "--address",
            address,
            "--task-queue",
            queue,
            *args,
            cwd=ROOT,
            env={**os.environ, "REDRESS_KEYS": str(keys)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        stderr.append(err.decode(errors="replace"))
        return await process.wait(), out.decode(errors="replace")

    with Peer() as peer:
        log = tmp_path / "worker.log"
        worker = await start_worker(
            {
                "TEMPORAL_ADDRESS": address,
                "REDRESS_TASK_QUEUE": queue,
                "REDRESS_RULES": str(write_rules(tmp_path / "rules")),
                "REDRESS_DATA": str(tmp_path / "data"),
                "REDRESS_NOTIFY_URL": f"{peer.url}/notify",
                "REDRESS_PAYMENT_URL": f"{peer.url}/pay",
                "REDRESS_LOG_FORMAT": "json",
                "REDRESS_LOG_LEVEL": "DEBUG",
            },
            log,
        )
        try:
            await wait_for_line(log, '"worker running"', worker)
            redress = RedressClient(env.client, task_queue=queue)
            plain = await Client.connect(address)  # sends what it is given, as any client may
            data = complaint(
                customer={
                    "id": f"cust-{uuid.uuid4().hex[:8]}",
                    "name": f"Ingrid {marks['name']}",
                    "phone": marks["phone"],
                    "email": marks["email"],
                    "language": "en",
                },
                text=f"My kettle leaks, I live at {marks['text']}, refund please.",
                metadata={"note": marks["metadata"]},
                order={"id": "SO-9", "value": "300", "items": [{"sku": "K-1", "name": marks["item"]}]},
            )
            cid = data["complaint_id"]
            (tmp_path / "complaint.json").write_text(json.dumps(data), encoding="utf-8")
            assert (await cli("submit", str(tmp_path / "complaint.json")))[0] == 0
            await stage_is(redress, cid, "acknowledged")

            # the notifier refuses the next notice, echoing it back, in its body and its reason phrase
            peer.script("/notify", fail=[422], reason=f"Invalid phone for {marks['peer_reason']}")
            assert (await cli("respond", cid, "--as", "li.na", "--message", marks["response"]))[0] == 0
            await eventually(lambda: _has_event(redress, cid, "notice_failed"))
            assert (await cli("ask", cid, "--as", "li.na", "--question", marks["question"]))[0] == 0
            assert (await cli("reply", cid, "--message", f"my ID number is {marks['reply']}"))[0] == 0
            code, out = await cli(
                "propose",
                cid,
                "--as",
                "li.na",
                "--kind",
                "refund",
                "--amount",
                "300",
                "--reason",
                marks["reason"],
                "--json",
            )
            assert code == 0 and json.loads(out)["status"] == "awaiting_approval", out
            assert (await cli("approve", cid, "--as", "wang.fang", "--note", marks["note"]))[0] == 0
            await stage_is(redress, cid, "remedy_executed")
            assert (
                await cli(
                    "resolve", cid, "--as", "li.na", "--summary", marks["summary"], "--root-cause", "billing_error"
                )
            )[0] == 0
            await stage_is(redress, cid, "follow_up")
            assert (await cli("feedback", cid, "--score", "2", "--comment", marks["comment"]))[0] == 0
            await stage_is(redress, cid, "reopened")
            assert (await cli("respond", cid, "--as", "li.na", "--message", marks["again"]))[0] == 0
            assert (
                await cli(
                    "resolve", cid, "--as", "li.na", "--summary", marks["summary"], "--root-cause", "billing_error"
                )
            )[0] == 0
            await stage_is(redress, cid, "follow_up")
            assert (await cli("feedback", cid, "--score", "5"))[0] == 0
            assert (await redress.outcome(cid)).stage.value == "closed"

            # values refused as invalid are not quoted back either
            bad = complaint(customer={"id": "c-bad", "phone": marks["bad_phone"]})
            (tmp_path / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
            assert (await cli("submit", str(tmp_path / "bad.json")))[0] == 2
            other = complaint(text=f"Late parcel {marks['text']}")
            await redress.submit(other)
            await stage_is(redress, other["complaint_id"], "acknowledged")
            assert (
                await cli(
                    "propose",
                    other["complaint_id"],
                    "--as",
                    "li.na",
                    "--kind",
                    "refund",
                    "--amount",
                    "10",
                    "--currency",
                    marks["bad_currency"],
                    "--reason",
                    marks["reason"],
                )
            )[0] == 2
            await redress.handle(other["complaint_id"]).signal(
                "approve_remedy", {"proposal_id": marks["reason"], "approver": marks["name"]}
            )
            # JSON cut off in the middle, sealed for the case: it passes the codec and fails only as JSON
            broken = Payload(metadata={"encoding": b"json/plain"}, data=f'{{"note": "{marks["raw_signal"]}", '.encode())
            target = f"complaint-{other['complaint_id']}"
            sealed = codec.codec_of(env.client.data_converter).bound(target).encode_one(broken)
            await plain.get_workflow_handle(target).signal("approve_remedy", RawValue(sealed))
            await eventually(lambda: _refusals(redress, other["complaint_id"], 2))
            keyed = complaint(metadata={f"{marks['metadata_key']} lives at 5 Long Street": {"nested": 1}})
            (tmp_path / "keyed.json").write_text(json.dumps(keyed), encoding="utf-8")
            assert (await cli("submit", str(tmp_path / "keyed.json")))[0] == 2
            assert (await cli("withdraw", other["complaint_id"], "--by", "customer", "--reason", marks["withdrawal"]))[
                0
            ] == 0
            assert (await redress.outcome(other["complaint_id"])).stage.value == "withdrawn"
        finally:
            await stop(worker)

    worker_log = log.read_text(encoding="utf-8", errors="replace")
    assert f'"complaint_id": "{cid}"' in worker_log and "notice" in worker_log  # the log does speak of the case
    assert len(worker_log.splitlines()) > 50
    found = {
        field: where
        for field, mark in marks.items()
        for where, text in [("worker", worker_log), *((f"cli {n}", e) for n, e in enumerate(stderr))]
        if mark in text
    }
    assert not found, f"personal text in logs: {found}"


async def _has_event(redress: RedressClient, cid: str, kind: str) -> bool:
    return any(e.kind == kind for e in await redress.timeline(cid))


async def _refusals(redress: RedressClient, cid: str, count: int) -> bool:
    return sum(e.kind == "decision_refused" for e in await redress.timeline(cid)) >= count
