"""Personal data reaches the Temporal server only encrypted; keys rotate; a customer can be erased.

The checks read the history as the server stores it (raw protobuf bytes, fetched
by a client without our codec), so plaintext anywhere in it would be found.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from redress import codec, report
from redress.client import Erased, Refused
from redress.contract import Feedback, Resolution, ResponseRecord, Withdrawal, workflow_id_for
from tests.helpers.cases import complaint, eventually, stage_is
from tests.helpers.histories import payloads_in, personal_complaint, raw, stored_history
from tests.helpers.serving import data_converter, serving


async def test_personal_data_reaches_the_server_only_encrypted(run_worker, env):
    data, secrets = personal_complaint()
    cid, workflow_id = data["complaint_id"], workflow_id_for(data["complaint_id"])
    async with run_worker() as redress:
        await redress.submit(data)
        await stage_is(redress, cid, "acknowledged")
        await redress.record_response(cid, ResponseRecord(agent="li.na", message=f"Dear {data['customer']['name']}"))
        await redress.resolve(
            cid, Resolution(agent="li.na", summary=f"refunded {data['customer']['email']}", root_cause="billing_error")
        )
        await redress.customer_feedback(cid, Feedback(score=5, comment="thanks, Ingrid"))
        outcome = await redress.outcome(cid)
        assert outcome.stage.value == "closed"

    history = await stored_history(env, workflow_id)
    stored = raw(history)
    for secret in secrets:
        assert secret not in stored, f"{secret!r} is readable in the server's history"
    payloads = payloads_in(history.events[0])
    assert payloads, "the start event carries the input"
    for event in history.events:
        if event.HasField("marker_recorded_event_attributes"):
            continue  # the SDK's own patch markers: {"id": "<patch name>"}, written without the codec
        for payload in payloads_in(event):
            assert payload.metadata["encoding"] == codec.ENCODING, (event.event_type, payload)
    # the input is under the case's own key; decrypted with it, the personal data is there
    start = payloads_in(history.events[0])[0]
    assert start.metadata[codec.SUBJECT] == workflow_id.encode()
    assert data["customer"]["email"].encode() in codec.codec_of(data_converter()).decode_one(start).data
    # the result is the anonymous Outcome: under the deployment key, not the case's
    completed = history.events[-1].workflow_execution_completed_event_attributes
    result = completed.result.payloads[0]
    assert codec.SUBJECT not in result.metadata
    assert result.metadata[codec.KEY_ID] == codec.codec_of(data_converter()).ring.current.encode()
    # the customer's record holds no personal data either, and is encrypted too
    customer_history = await stored_history(env, redress.customer_record_id(data["customer"]["id"]))
    for secret in secrets:
        assert secret not in raw(customer_history)


async def test_keys_rotate_and_running_cases_still_decrypt(env, tmp_path, peer, rules_dir):
    """A case starts under one key, the ring rotates, a fresh worker carries the case on under the new one."""
    keys = tmp_path / "keys"
    address = env.client.service_client.config.target_host
    queue = f"redress-rotate-{uuid.uuid4().hex[:6]}"
    data, _ = personal_complaint()
    cid = data["complaint_id"]
    before = await Client.connect(address, data_converter=codec.data_converter(keys, create_keys=True))
    first_key = codec.KeyRing.load(keys).current
    async with serving(before, rules_dir, tmp_path / "data", peer.url, task_queue=queue) as redress:
        await redress.submit(data)
        await stage_is(redress, cid, "acknowledged")

    ring = codec.KeyRing.rotate(keys)
    assert ring.current != first_key and first_key in ring.keys
    after = await Client.connect(address, data_converter=codec.data_converter(keys))
    async with serving(after, rules_dir, tmp_path / "data", peer.url, task_queue=queue) as redress:
        status = await redress.record_response(cid, ResponseRecord(agent="li.na"))  # replays the old payloads
        assert status.stage.value == "in_progress"
        await redress.withdraw(cid, Withdrawal(by="customer"))
        assert (await redress.outcome(cid)).stage.value == "withdrawn"

    customer = await stored_history(env, redress.customer_record_id(data["customer"]["id"]))
    used = {p.metadata[codec.KEY_ID].decode() for e in customer.events for p in payloads_in(e)}
    assert {first_key, ring.current} <= used  # the record was written under both keys and still replays
    outcome = (await stored_history(env, workflow_id_for(cid))).events[-1]
    assert (
        outcome.workflow_execution_completed_event_attributes.result.payloads[0].metadata[codec.KEY_ID]
        == ring.current.encode()
    )
    # a ring that lost the old key says which key it misses instead of failing obscurely
    lost = codec.EncryptionCodec(
        codec.KeyRing(current=ring.current, keys={ring.current: ring.keys[ring.current]}),
        codec.SubjectKeys(tmp_path / "other.sqlite", ring),
    )
    old_payload = next(
        p for e in customer.events for p in payloads_in(e) if p.metadata[codec.KEY_ID] == first_key.encode()
    )
    with pytest.raises(codec.UnknownKey, match=first_key):
        lost.decode_one(old_payload)


async def test_erasing_a_customer_shreds_their_cases_and_keeps_the_figures(run_worker, env):
    customer_id = f"erase-{uuid.uuid4().hex[:8]}"
    first, _ = personal_complaint(customer_id, order={"id": "SO-1"})
    second, _ = personal_complaint(customer_id, order={"id": "SO-2"})
    other, _ = personal_complaint()
    async with run_worker() as redress:
        for data in (first, second, other):
            await redress.submit(data)
            await stage_is(redress, data["complaint_id"], "acknowledged")
        await redress.record_response(first["complaint_id"], ResponseRecord(agent="li.na"))
        await redress.resolve(
            first["complaint_id"], Resolution(agent="li.na", summary="refunded", root_cause="billing_error")
        )
        await redress.customer_feedback(first["complaint_id"], Feedback(score=4))
        assert (await redress.outcome(first["complaint_id"])).stage.value == "closed"

        async def refused_naming_the_open_case():
            try:
                await redress.erase_customer(customer_id)
            except Refused as refused:
                return second["complaint_id"] in refused.reason and "open" in refused.reason
            return False

        assert await eventually(refused_naming_the_open_case)
        assert not codec.codec_of(data_converter()).subjects.erased(workflow_id_for(first["complaint_id"]))

        await redress.withdraw(second["complaint_id"], Withdrawal(by="customer"))
        expected = sorted([first["complaint_id"], second["complaint_id"]])

        async def erased_both():
            try:
                return await redress.erase_customer(customer_id) == expected
            except Refused:
                return False  # visibility has not seen the withdrawal yet

        assert await eventually(erased_both)

        with pytest.raises(Erased):
            await redress.status(first["complaint_id"])
        start = payloads_in((await stored_history(env, workflow_id_for(first["complaint_id"]))).events[0])[0]
        with pytest.raises(codec.PersonalDataErased):
            codec.codec_of(data_converter()).decode_one(start)
        # the anonymous figures stay: outcome, and the report built from it
        outcome = await redress.outcome(first["complaint_id"])
        assert outcome.csat == 4 and outcome.stage.value == "closed"
        records = {r.complaint_id: r for r in await report.collect(env.client, task_queue=redress.task_queue)}
        assert records[first["complaint_id"]].csat == 4
        assert records[second["complaint_id"]].result == "withdrawn"
        # another customer's case is untouched
        assert (await redress.status(other["complaint_id"])).stage.value == "acknowledged"
        await redress.withdraw(other["complaint_id"], Withdrawal(by="customer"))


async def test_the_cli_erases_and_explains(run_worker, tmp_path):
    data, _ = personal_complaint()
    async with run_worker() as redress:
        await redress.submit(data)
        await stage_is(redress, data["complaint_id"], "acknowledged")
        await redress.withdraw(data["complaint_id"], Withdrawal(by="customer"))
        address = redress.client.service_client.config.target_host

        async def redress_cli(*args: str) -> tuple[int, str, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "redress",
                "--address",
                address,
                "--task-queue",
                redress.task_queue,
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(os.environ),
                cwd=Path(__file__).resolve().parent.parent,
            )
            out, err = await process.communicate()
            return await process.wait(), out.decode(), err.decode()

        async def erased():
            code, out, _ = await redress_cli("erase-customer", data["customer"]["id"], "--json")
            return code == 0 and data["complaint_id"] in out

        assert await eventually(erased)
        code, out, err = await redress_cli("show", data["complaint_id"])
        assert code == 1 and "personal data was erased" in err
        code, out, err = await redress_cli("erase-customer", "any id at all, even with spaces")
        assert code == 0 and "of 0 case(s)" in out  # it is only ever looked up by its pseudonym


def test_processes_starting_together_share_one_key_ring(tmp_path):
    """The worker and a CLI started at once on a fresh machine must not each make their own ring."""
    keys = tmp_path / "keys"
    script = (
        "import pathlib, sys; from redress import codec; "
        "print(codec.KeyRing.load(pathlib.Path(sys.argv[1]), create=True).current)"
    )
    root = Path(__file__).resolve().parent.parent
    starts = [
        subprocess.Popen([sys.executable, "-c", script, str(keys)], cwd=root, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    currents = {process.communicate(timeout=60)[0].strip() for process in starts}
    assert len(currents) == 1 and codec.KeyRing.load(keys).current in currents
    assert oct((keys / "codec.json").stat().st_mode & 0o777) == "0o600"


async def test_a_payload_opens_only_in_its_own_workflow(run_worker, env):
    """Finding 7: a case's ciphertext decoded under another case; plaintext was accepted silently."""
    from temporalio.common import RawValue

    async with run_worker() as redress:
        first, second = complaint(), complaint()
        for data in (first, second):
            await redress.submit(data)
            await stage_is(redress, data["complaint_id"], "acknowledged")
        start = payloads_in((await stored_history(env, workflow_id_for(first["complaint_id"]))).events[0])[0]
        forged = Payload(metadata=dict(start.metadata), data=start.data[:-1] + bytes([start.data[-1] ^ 1]))
        forged.metadata[codec.SUBJECT] = workflow_id_for(second["complaint_id"]).encode()
        forged.metadata[codec.BOUND] = workflow_id_for(second["complaint_id"]).encode()
        plain = await Client.connect(env.client.service_client.config.target_host)  # sends payloads as they are
        target = plain.get_workflow_handle(workflow_id_for(second["complaint_id"]))
        reasons = {}
        for name, payload in (
            ("copied", start),
            ("forged", forged),
            ("plain", Payload(metadata={"encoding": b"json/plain"}, data=b'{"by": "customer"}')),
        ):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await target.execute_update("withdraw", RawValue(payload))
            reasons[name] = refused.value.cause
            await target.signal("approve_remedy", RawValue(payload))
        noted = await eventually(lambda: _kinds(redress, second["complaint_id"], "decision_refused", 3))
        status = await redress.status(second["complaint_id"])
    assert all(isinstance(cause, ApplicationError) and cause.type == "Refused" for cause in reasons.values())
    assert [
        "sealed for another workflow" in noted[0],
        "failed authentication" in noted[1],
        "sent unencrypted" in noted[2],
    ] == [True, True, True]
    assert status.stage.value == "acknowledged"  # none of it changed the case


async def _kinds(redress, cid: str, kind: str, count: int):
    found = [e.detail for e in await redress.timeline(cid) if e.kind == kind]
    return found if len(found) >= count else None


def raw_bytes(path) -> bytes:
    """A file's bytes, read by another process.

    Not here: closing a descriptor of subjects.sqlite in this process would drop every POSIX lock
    SQLite holds on it for this process's connection, and a worker started later (the fault test's)
    would take the shared memory for its own and reset it under that connection (SIGBUS).
    """
    reader = "import sys; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read())"
    return subprocess.run([sys.executable, "-c", reader, str(path)], capture_output=True, check=True).stdout


async def test_an_erased_key_is_in_no_file_and_every_key_file_is_owner_only(run_worker, env):
    """Finding 7: the erased key stayed in subjects.sqlite-wal, readable; -wal and -shm were 0644."""
    import sqlite3

    customer_id = f"shred-{uuid.uuid4().hex[:8]}"
    data, _ = personal_complaint(customer_id)
    subject = workflow_id_for(data["complaint_id"])
    keys = codec.keys_dir()
    async with run_worker() as redress:
        await redress.submit(data)
        await stage_is(redress, data["complaint_id"], "acknowledged")
        await redress.withdraw(data["complaint_id"], Withdrawal(by="customer"))
        await redress.outcome(data["complaint_id"])
        with sqlite3.connect(keys / "subjects.sqlite") as db:
            [wrapped] = db.execute("SELECT wrapped FROM subject_keys WHERE subject = ?", (subject,)).fetchone()
        assert wrapped and any(wrapped in raw_bytes(path) for path in keys.iterdir() if path.is_file())

        async def erased():
            try:
                return data["complaint_id"] in await redress.erase_customer(customer_id)
            except Refused:
                return False  # visibility has not seen the end yet

        assert await eventually(erased)
    holding = [path.name for path in keys.iterdir() if path.is_file() and wrapped in raw_bytes(path)]
    assert holding == []
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in keys.iterdir() if path.is_file()}
    assert set(modes.values()) == {"0o600"}, modes
    assert {"codec.json", "subjects.sqlite", "subjects.sqlite-wal", "subjects.sqlite-shm"} <= set(modes)


async def test_visibility_and_record_ids_carry_a_pseudonym_not_the_customer_id(run_worker, env):
    """Finding 8: CustomerId was stored in clear in visibility, and customer ids are often e-mail addresses."""
    customer_id = f"pat.{uuid.uuid4().hex[:6]}@example.com"
    async with run_worker() as redress:
        data = complaint(customer={"id": customer_id, "language": "en"})
        await redress.submit(data)
        await stage_is(redress, data["complaint_id"], "acknowledged")
        ref = redress.customer_ref(customer_id)
        assert (
            ref.startswith("p-")
            and customer_id not in ref
            and ref == codec.KeyRing.load(codec.keys_dir()).pseudonym(customer_id)
        )

        async def listed():
            return [w.id async for w in env.client.list_workflows(f"CustomerId = '{ref}'")]

        assert await eventually(listed) == [workflow_id_for(data["complaint_id"])]
        description = await redress.handle(data["complaint_id"]).describe()
        assert customer_id not in str(description.raw_description)
        assert (await redress.customer_record(customer_id)).customer_id == ref  # the record holds the pseudonym only
        await env.client.get_workflow_handle(f"customer-{ref}").describe()
        await redress.withdraw(data["complaint_id"], Withdrawal(by="customer"))
        # a complaint refused as invalid carries the same customer's personal data: erasure finds it too
        refused = complaint(customer={"id": customer_id, "name": "Pat", "phone": "not a phone"})
        await env.client.start_workflow(
            "Complaint", refused, id=workflow_id_for(refused["complaint_id"]), task_queue=redress.task_queue
        )
        assert (await redress.outcome(refused["complaint_id"])).stage.value == "refused"

        erased: set[str] = set()

        async def erased_both():
            try:
                erased.update(await redress.erase_customer(customer_id))  # an e-mail address as the id
            except Refused:
                return None  # visibility has not seen the withdrawal yet
            return sorted(erased) if len(erased) == 2 else None  # nor, perhaps, the refused case: ask again

        assert await eventually(erased_both) == sorted([data["complaint_id"], refused["complaint_id"]])
        start = payloads_in((await stored_history(env, workflow_id_for(refused["complaint_id"]))).events[0])[0]
        with pytest.raises(codec.PersonalDataErased):
            codec.codec_of(data_converter()).decode_one(start)
