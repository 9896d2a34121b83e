"""A missed deadline can pay the customer automatically: exactly once, through the usual remedy path."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tests.helpers.cases import eventually, open_case
from tests.helpers.rules import APPROVER_KEYS, write_rules

GUARANTEE = """
tiers:
  general:
    first_response: 60s
    resolution: 3s
    escalate_to: team_lead
    escalation:
      resolution:
        - {after: 0s, notify: team_lead, pay: {kind: coupon, amount: 50, currency: CNY, reason: "late: our guarantee"}}
  urgent: {first_response: 60s, resolution: 60s, escalate_to: cs_manager}
  major: {first_response: 60s, resolution: 60s, escalate_to: director}
follow_up: {survey_window: 60s, reopen_below: 3}
"""


async def executed(redress, cid):
    status = await redress.status(cid)
    return status if any(r.status.value == "executed" for r in status.remedies) else None


async def test_missed_resolution_pays_the_guarantee_exactly_once(run_worker, peer, tmp_path):
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=GUARANTEE)) as redress:
        cid = await open_case(redress, respond_as="li.na", text="just a question about my order")
        status = await eventually(lambda: executed(redress, cid), timeout=20)
        await asyncio.sleep(2)  # nothing more may be paid
        status = await redress.status(cid)
        events = await redress.timeline(cid)
    [payout] = status.remedies
    assert (payout.kind.value, payout.amount, payout.currency) == ("coupon", Decimal("50"), "CNY")
    assert payout.proposed_by == "rules:resolution" and payout.decided_by == "rules:resolution"
    assert payout.transaction_id == "tx-1" and status.stage.value == "remedy_executed"
    paid = peer.acted("/pay", complaint_id=cid)
    assert len(paid) == 1 and paid[0].key == f"remedy:{cid}:P1"
    assert len(peer.received("/pay", complaint_id=cid)) == 1
    proposed = next(e for e in events if e.kind == "remedy_proposed")
    assert proposed.actor == "rules:resolution" and "automatic" in proposed.detail


async def test_a_guarantee_that_needs_approval_waits_for_an_approver(run_worker, peer, tmp_path):
    tiers = GUARANTEE.replace("pay: {kind: coupon, amount: 50,", "pay: {kind: cash, amount: 500, needs_approval: true,")
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=tiers)) as redress:
        cid = await open_case(redress, respond_as="li.na", text="just a question about my order")

        async def awaiting():
            status = await redress.status(cid)
            return status if status.pending_approval else None

        status = await eventually(awaiting, timeout=20)
        assert status.pending_approval.required_role == "team_lead"
        assert peer.acted("/pay", complaint_id=cid) == []
        await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        await eventually(lambda: executed(redress, cid), timeout=20)
    assert len(peer.acted("/pay", complaint_id=cid)) == 1
