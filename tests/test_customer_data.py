"""The customer's own data (issue 21): `redress export-customer` writes everything held about one customer,
decrypted (every case, its timeline and remedies, the record), and nothing of anyone else; the export is audited."""

from __future__ import annotations

import json
import stat
import uuid

from redress.contract import Withdrawal, workflow_id_for
from tests.helpers.cases import complaint, eventually, open_case, stage_is
from tests.helpers.processes import redress_cli


async def test_an_export_holds_every_case_of_the_customer_and_nothing_of_another(run_worker, env, tmp_path):
    mine = {"id": f"sar-{uuid.uuid4().hex[:8]}", "name": "Ada Export", "phone": "+44 20 7946 0001", "language": "en"}
    other = {"id": f"sar-{uuid.uuid4().hex[:8]}", "name": "Bo Other", "email": "bo@example.com", "language": "en"}
    async with run_worker() as redress:
        ended = await open_case(redress, respond_as="li.na", customer=mine, text="The kettle leaks: first case.")
        await redress.withdraw(ended, Withdrawal(by="customer", reason="sorted"))
        await stage_is(redress, ended, "withdrawn")
        still_open = await open_case(redress, respond_as="li.na", customer=mine, text="The lid is cracked too.")
        someone_else = await open_case(redress, customer=other, text="Another person's private complaint.")
        refused = f"SAR-{uuid.uuid4().hex[:8]}"  # refused as invalid, and held all the same: theirs too
        await redress.client.start_workflow(
            "Complaint",
            {**complaint(complaint_id=refused, customer=mine), "channel": "pigeon", "text": "Sent by pigeon, refused."},
            id=workflow_id_for(refused),
            task_queue=redress.task_queue,
        )
        await stage_is(redress, refused, "refused")

        async def listed() -> bool:
            running, done = await redress.cases_of(mine["id"])
            return len(running) == 1 and len(done) == 2

        await eventually(listed)
        out = tmp_path / "ada.json"
        nameless, _, why = await redress_cli(env, "export-customer", mine["id"], "--as", "", "--out", str(out))
        assert nameless == 2 and "by" in why and not out.exists()  # refused before anything is read or written
        code, said, err = await redress_cli(env, "export-customer", mine["id"], "--as", "li.na", "--out", str(out))
        assert code == 0, err
        text = out.read_text(encoding="utf-8")
        exported = json.loads(text)
        # audited: in the open case's timeline and in the customer's record
        await eventually(lambda: _noted(redress, still_open))
        record = await eventually(lambda: _exports_logged(redress, mine["id"]))

    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and mine["id"] in said
    cases = {c["complaint_id"]: c for c in exported["cases"]}
    assert set(cases) == {ended, still_open, refused} and exported["skipped"] == 0
    assert cases[refused]["refused_input"]["text"] == "Sent by pigeon, refused." and cases[refused]["complaint"] is None
    assert cases[ended]["complaint"]["customer"]["phone"] == mine["phone"]  # decrypted: it is theirs
    assert cases[ended]["complaint"]["text"] == "The kettle leaks: first case."
    assert cases[ended]["outcome"]["stage"] == "withdrawn" and "outcome" not in cases[still_open]
    assert any(e["kind"] == "withdrawn" for e in cases[ended]["timeline"])
    assert cases[still_open]["status"]["stage"] == "in_progress" and cases[still_open]["timeline"]
    assert exported["record"]["customer_id"] == record.customer_id and len(exported["record"]["cases"]) == 2
    for trace in (someone_else, other["id"], other["name"], other["email"], "Another person's private"):
        assert trace not in text
    assert [(a.by, a.cases) for a in record.access_log] == [("li.na", 3)]


async def _noted(redress, complaint_id: str) -> bool:
    return any(e.kind == "data_exported" and "li.na" in e.detail for e in await redress.timeline(complaint_id))


async def _exports_logged(redress, customer_id: str):
    record = await redress.customer_record(customer_id)
    return record if record.access_log else None
