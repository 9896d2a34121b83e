"""Waiting on the customer stops the clocks; the paused time is not counted and the timeline shows it."""

from __future__ import annotations

import asyncio

import pytest

from redress.client import Refused
from redress.contract import CustomerQuestion, CustomerReply, RemedyProposal, Resolution
from tests.helpers.cases import eventually, open_case
from tests.helpers.rules import write_rules

TIERS = """
tiers:
  general: {first_response: 60s, resolution: 5s, escalate_to: team_lead}
  urgent: {first_response: 60s, resolution: 60s, escalate_to: cs_manager}
  major: {first_response: 60s, resolution: 60s, escalate_to: director}
follow_up: {survey_window: 60s, reopen_below: 3}
"""


async def test_paused_time_is_not_counted_against_the_deadline(run_worker, peer, tmp_path):
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=TIERS)) as redress:
        cid = await open_case(redress, respond_as="li.na", text="just a question about my order")
        original = (await redress.status(cid)).deadlines["resolution"].due
        status = await redress.await_customer(cid, CustomerQuestion(agent="li.na", question="Which colour was it?"))
        assert status.stage.value == "pending_customer" and status.paused_since is not None
        with pytest.raises(Refused, match="pending_customer"):
            await redress.resolve(cid, Resolution(agent="li.na", summary="x", root_cause="process_gap"))
        with pytest.raises(Refused, match="pending_customer"):
            await redress.propose_remedy(cid, RemedyProposal(kind="apology", reason="x", proposed_by="li.na"))

        await asyncio.sleep(6)  # the original resolution deadline passes while paused
        status = await redress.status(cid)
        assert status.deadlines["resolution"].breached_at is None and status.escalation_level == 0

        status = await redress.customer_replied(cid, CustomerReply(message="Blue"))
        assert status.stage.value == "in_progress" and status.paused_since is None
        shifted = status.deadlines["resolution"].due
        paused = (shifted - original).total_seconds()
        assert 5.5 < paused < 9 and status.paused_seconds == pytest.approx(paused, abs=0.01)

        async def missed():
            deadline = (await redress.status(cid)).deadlines["resolution"]
            return deadline if deadline.breached_at else None

        deadline = await eventually(missed, timeout=15)
        events = await redress.timeline(cid)
    assert deadline.breached_at >= shifted
    kinds = [e.kind for e in events]
    assert kinds.index("paused") < kinds.index("resumed") < kinds.index("deadline_missed")
    resumed = next(e for e in events if e.kind == "resumed")
    assert resumed.data["paused_seconds"] == pytest.approx(paused, abs=0.01) and "Blue" in resumed.detail
    question = [r for r in peer.acted("/notify", complaint_id=cid, template="progress")]
    assert "Which colour was it?" in question[0].body["text"]


async def test_reply_without_a_pause_is_refused(run_worker):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        with pytest.raises(Refused, match="not waiting on the customer"):
            await redress.customer_replied(cid, CustomerReply(message="hello"))
