"""Professional claimants (issue 21): the customer's record counts what was paid to them; a rule flags them for
review at triage, and then even a small remedy awaits an approver; a supervisor reviews and clears the flag.

The test's rules flag at two payouts (the shipped rule, rules/across_cases.yaml, at four).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from redress.client import Refused
from redress.contract import RemedyProposal
from redress.customers import REMEDY_PAID, FlagClearance
from tests.helpers.cases import eventually, notices, open_case, stage_is
from tests.helpers.processes import redress_cli
from tests.helpers.rules import APPROVER_KEYS

FLAG_AT_TWO = """claimant_flags:
  - name: frequent-payouts
    when: customer.payouts_90d >= 2 || customer.paid_amount_90d > 3000.0
    reason: "Paid twice or more within 90 days: check before paying again."
"""


def coupon(by: str = "li.na") -> RemedyProposal:
    return RemedyProposal(kind="coupon", amount=Decimal("20"), currency="CNY", reason="for the trouble", proposed_by=by)


async def paid_case(redress, customer: dict) -> str:
    """A case whose 20 CNY coupon (within the automatic limit) is paid at once."""
    cid = await open_case(redress, respond_as="li.na", text="Delivery is two days late.", customer=customer)
    assert (await redress.propose_remedy(cid, coupon())).status.value == "approved"
    await stage_is(redress, cid, "remedy_executed")
    return cid


async def test_a_flagged_claimants_small_remedy_awaits_an_approver_until_a_supervisor_clears_the_flag(
    run_worker, rules_dir, peer, env
):
    across = rules_dir / "across_cases.yaml"
    text = across.read_text(encoding="utf-8")
    across.write_text(text[: text.index("claimant_flags:")] + FLAG_AT_TWO, encoding="utf-8")
    customer = {"id": f"claims-{uuid.uuid4().hex[:8]}", "name": "Pat Claims", "language": "en"}
    async with run_worker(rules=rules_dir) as redress:
        for _ in range(2):
            await paid_case(redress, customer)
        record = await eventually(lambda: _with_payouts(redress, customer["id"], 2))
        assert record.flag is None and {p.with_evidence for p in record.payouts} == {False}
        # a forged payout dated far ahead is ignored (it would keep the record past any date it may hold); the
        # ordinary one sent after it, counted, shows the first was read
        handle = redress.client.get_workflow_handle(redress.customer_record_id(customer["id"]))
        far = datetime(2099, 1, 1, tzinfo=UTC)
        paid = record.payouts[0]
        await handle.signal(REMEDY_PAID, paid.model_copy(update={"proposal_id": "P9", "at": far}))
        await handle.signal(REMEDY_PAID, paid.model_copy(update={"proposal_id": "P8"}))
        record = await eventually(lambda: _with_payouts(redress, customer["id"], 3))
        assert "P9" not in {p.proposal_id for p in record.payouts}

        # the third complaint's triage flags them: the case says why (for staff), the record keeps the flag
        flagged = await open_case(redress, respond_as="li.na", text="Delivery is two days late.", customer=customer)
        status = await redress.status(flagged)
        assert status.claimant_flag and "twice or more" in status.claimant_flag
        record = await redress.customer_record(customer["id"])
        assert record.flag is not None and record.flag.by == "rules:frequent-payouts"
        assert record.flag.complaint_id == flagged

        # 20 CNY is within the automatic limit and li.na's own authority, and still awaits someone else
        answer = await redress.propose(flagged, coupon(), APPROVER_KEYS["li.na"])
        assert answer.status.value == "awaiting_approval"
        pending = (await redress.status(flagged)).pending_approval
        assert pending is not None and "flagged for review" in (await redress.timeline(flagged))[-1].detail
        with pytest.raises(Refused):
            await redress.approve(flagged, "li.na", APPROVER_KEYS["li.na"])  # four eyes: not the proposer
        await redress.approve(flagged, "sam.taylor", APPROVER_KEYS["sam.taylor"])
        await stage_is(redress, flagged, "remedy_executed")
        told = [n.body["text"] for t in ("acknowledgement", "remedy_executed") for n in await notices(peer, flagged, t)]
        assert told and not any("flag" in text.lower() or "twice" in text for text in told)  # never told to them

        # a supervisor reviews and clears it: the rules may not flag them again while the clearance runs
        code, _, err = await redress_cli(
            env, "customer", customer["id"], "--clear-flag", "--as", "wang.fang", "--note", "reviewed: genuine"
        )
        assert code == 0, err
        with pytest.raises(Refused, match="not flagged"):
            await redress.clear_customer_flag(customer["id"], FlagClearance(by="wang.fang"))
        trusted = await open_case(redress, respond_as="li.na", text="Delivery is two days late.", customer=customer)
        assert (await redress.status(trusted)).claimant_flag is None
        assert (await redress.propose_remedy(trusted, coupon())).status.value == "approved"
        code, shown, err = await redress_cli(env, "customer", customer["id"])
        kinds = [e.kind for e in await redress.timeline(flagged)]
    assert code == 0, err
    assert "flagged" in shown and "cleared" in shown and "reviewed: genuine" in shown and "wang.fang" in shown
    assert "claimant_flagged" in kinds


async def _with_payouts(redress, customer_id: str, count: int):
    record = await redress.customer_record(customer_id)
    return record if len(record.payouts) == count else None
