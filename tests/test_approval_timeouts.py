"""An approval that does not come in time goes to the next level; at the top the rules' fallback applies."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from redress.contract import RemedyProposal
from tests.helpers.cases import eventually, notices, open_case
from tests.helpers.rules import APPROVER_KEYS, write_rules


def rules_with_timeout(tmp_path, fallback: str):
    rules = write_rules(tmp_path / "r")
    text = (rules / "approval.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "  free_kinds: [apology, explanation]",
        f"  free_kinds: [apology, explanation]\n  decision_timeout: 2s\n  fallback: {fallback}",
    )
    (rules / "approval.yaml").write_text(text, encoding="utf-8")
    return rules


async def propose(redress, cid):
    await redress.propose_remedy(
        cid,
        RemedyProposal(
            kind="refund", amount=Decimal("800"), currency="CNY", reason="broken on arrival", proposed_by="li.na"
        ),
    )


async def decided(redress, cid):
    status = await redress.status(cid)
    return status if status.remedies and status.remedies[0].status.value != "awaiting_approval" else None


async def test_no_decision_climbs_the_levels_then_rejects_with_an_apology(run_worker, peer, tmp_path):
    async with run_worker(rules=rules_with_timeout(tmp_path, "{action: reject}")) as redress:
        cid = await open_case(redress, respond_as="li.na")
        await propose(redress, cid)
        status = await eventually(lambda: decided(redress, cid), timeout=20)
        events = await redress.timeline(cid)
        apology = await eventually(lambda: notices(peer, cid, "remedy_declined"))
    [proposal] = status.remedies
    assert proposal.status.value == "rejected" and proposal.decided_by == "rules:approval-timeout"
    assert status.stage.value == "in_progress"
    climbed = [e.data["required_role"] for e in events if e.kind == "approval_escalated"]
    assert climbed == ["cs_manager", "director"]
    asked = [r.body["role"] for r in peer.acted("/notify", complaint_id=cid, template="approval_needed")]
    assert asked == ["team_lead", "cs_manager", "director"]
    assert "非常抱歉" in apology[0].body["text"]  # in the customer's language
    assert peer.acted("/pay", complaint_id=cid) == []


async def test_fallback_approves_within_its_cap(run_worker, peer, tmp_path):
    async with run_worker(rules=rules_with_timeout(tmp_path, "{action: approve, cap: {CNY: 1000}}")) as redress:
        cid = await open_case(redress, respond_as="li.na")
        await propose(redress, cid)
        status = await eventually(lambda: decided(redress, cid), timeout=20)

        async def paid():
            return (await redress.status(cid)).remedies[0].status.value == "executed"

        await eventually(paid, timeout=10)
    assert status.remedies[0].decided_by == "rules:approval-timeout"
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


async def test_a_timely_decision_stops_the_climb(run_worker, peer, tmp_path):
    async with run_worker(rules=rules_with_timeout(tmp_path, "{action: reject}")) as redress:
        cid = await open_case(redress, respond_as="li.na")
        await propose(redress, cid)
        await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        await asyncio.sleep(3)  # past the timeout
        events = await redress.timeline(cid)
    assert not [e for e in events if e.kind == "approval_escalated"]
    assert len(peer.acted("/pay", complaint_id=cid)) == 1
