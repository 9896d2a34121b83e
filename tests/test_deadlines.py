"""Deadlines are Temporal timers: a miss escalates, a met deadline never fires, a downed worker catches up."""

from __future__ import annotations

import asyncio

from redress.contract import ResponseRecord
from tests.helpers.cases import complaint, eventually, notices, open_case, stage_is
from tests.helpers.rules import write_rules


async def test_missed_first_response_escalates_once_to_the_tier_role(run_worker, peer, tmp_path):
    rules = write_rules(tmp_path / "fast", first_response="2s", resolution="60s")
    async with run_worker(rules=rules) as redress:
        data = complaint()
        cid = data["complaint_id"]
        await redress.submit(data)

        async def escalated():
            status = await redress.status(cid)
            return status if status.escalation_level else None

        status = await eventually(escalated, timeout=15)
        deadline = status.deadlines["first_response"]
        assert deadline.breached_at is not None and deadline.breached_at >= deadline.due
        sent = await eventually(lambda: notices(peer, cid, "escalation"))
        assert sent[0].body["role"] == "team_lead" and "first_response" in sent[0].body["text"]
        await asyncio.sleep(1.5)
        assert (await redress.status(cid)).escalation_level == 1  # once, not again
        missed = [e for e in await redress.timeline(cid) if e.kind == "deadline_missed"]
        assert [e.data["deadline"] for e in missed] == ["first_response"]
        # late answer still counts as the response, but the breach stays recorded
        await redress.record_response(cid, ResponseRecord(agent="li.na"))
        assert (await redress.status(cid)).deadlines["first_response"].breached_at is not None


async def test_a_met_deadline_never_fires(run_worker, peer, tmp_path):
    rules = write_rules(tmp_path / "fast", first_response="2s", resolution="60s")
    async with run_worker(rules=rules) as redress:
        cid = await open_case(redress, respond_as="li.na")
        await asyncio.sleep(3)
        status = await redress.status(cid)
    assert status.escalation_level == 0 and status.deadlines["first_response"].breached_at is None
    assert peer.acted("/notify", complaint_id=cid, template="escalation") == []


async def test_deadline_passed_while_no_worker_ran_still_escalates(run_worker, peer, tmp_path):
    rules = write_rules(tmp_path / "fast", first_response="3s", resolution="60s")
    queue = "redress-downtime-test"
    data = complaint()
    cid = data["complaint_id"]
    async with run_worker(rules=rules, task_queue=queue) as redress:
        await redress.submit(data)
        await stage_is(redress, cid, "acknowledged")
    await asyncio.sleep(4)  # the deadline passes with no worker running
    assert peer.acted("/notify", complaint_id=cid, template="escalation") == []
    async with run_worker(rules=rules, task_queue=queue) as redress:
        await eventually(lambda: notices(peer, cid, "escalation"), timeout=15)
        status = await redress.status(cid)
    assert status.escalation_level == 1
