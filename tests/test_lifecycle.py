"""A complaint's whole life on the real dev server: intake to close, reopen, withdraw, duplicates."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from redress.client import AlreadyExists, Refused
from redress.contract import (
    Feedback,
    RemedyProposal,
    Resolution,
    ResponseRecord,
    Withdrawal,
)
from tests.helpers.cases import complaint, eventually, notices, open_case, stage_is
from tests.helpers.rules import APPROVER_KEYS, write_rules


async def test_complaint_from_submission_to_close(run_worker, peer):
    async with run_worker() as redress:
        data = complaint()
        cid = data["complaint_id"]
        assert await redress.submit(data) == f"complaint-{cid}"

        status = await stage_is(redress, cid, "acknowledged")
        assert (status.category, status.queue, status.severity.value) == ("billing", "billing", "general")
        assert {o.kind.value for o in status.offers} == {"apology", "refund"}
        ack = peer.acted("/notify", complaint_id=cid, template="acknowledgement")
        assert len(ack) == 1 and ack[0].body["language"] == "zh" and "我们已收到" in ack[0].body["text"]

        status = await redress.record_response(cid, ResponseRecord(agent="li.na", message="我们正在核实扣费记录。"))
        assert status.stage.value == "in_progress" and status.assignee == "li.na"
        assert status.deadlines["first_response"].met_at is not None

        answer = await redress.propose(
            cid,
            RemedyProposal(
                kind="refund", amount=Decimal("100"), currency="CNY", reason="duplicate charge", proposed_by="li.na"
            ),
            APPROVER_KEYS["li.na"],
        )
        assert answer.status.value == "approved"  # signed, within a specialist's 200 CNY
        status = await stage_is(redress, cid, "remedy_executed")
        assert status.remedies[0].transaction_id == "tx-1"

        # closing the loop: the rules' root causes are what a resolution must name
        assert "carrier_damage" in status.root_causes and "billing_error" in status.root_causes
        with pytest.raises(Refused, match=r"name the root cause \(root_cause\): one of .*billing_error"):
            await redress.resolve(cid, Resolution(agent="li.na", summary="重复扣费已退回"))
        with pytest.raises(Refused, match="root_cause: not in the rules' list") as refused:
            await redress.resolve(cid, Resolution(agent="li.na", summary="重复扣费已退回", root_cause="john.smith"))
        assert "john.smith" not in str(refused.value)  # a refusal names the field, never the value
        status = await redress.resolve(
            cid, Resolution(agent="li.na", summary="重复扣费已退回", root_cause="billing_error")
        )
        assert status.root_cause == "billing_error"
        await stage_is(redress, cid, "follow_up")
        await redress.customer_feedback(cid, Feedback(score=5, comment="谢谢"))
        outcome = await redress.outcome(cid)
        timeline = await redress.timeline(cid)
        kinds = [e.kind for e in timeline]

    assert outcome.stage.value == "closed" and outcome.csat == 5 and outcome.breaches == []
    assert outcome.root_cause == "billing_error" and outcome.repeat_complaint is False
    assert next(e for e in timeline if e.kind == "resolved").data["root_cause"] == "billing_error"
    # the first callback: from the acknowledgement to li.na's first response
    response_at = next(e.at for e in timeline if e.kind == "response")
    assert outcome.acknowledged_at is not None and outcome.first_contact_at == response_at
    assert outcome.acknowledged_at <= outcome.first_contact_at
    assert [(p.kind.value, p.amount) for p in outcome.compensation] == [("refund", Decimal("100"))]
    assert len(peer.acted("/pay", complaint_id=cid)) == 1
    templates = [r.body["template"] for r in peer.acted("/notify", complaint_id=cid)]
    assert templates == ["acknowledgement", "progress", "remedy_executed", "survey", "closed"]
    assert kinds == [
        "received",
        "triaged",
        "acknowledged",
        "response",
        "remedy_proposed",
        "remedy_executed",
        "resolved",
        "feedback",
        "closed",
    ]


async def test_duplicate_submission_opens_no_second_case(run_worker, env):
    async with run_worker() as redress:
        data = complaint()
        await redress.submit(data)
        with pytest.raises(AlreadyExists):
            await redress.submit({**data, "text": "a different text, same id"})
        status = await stage_is(redress, data["complaint_id"], "acknowledged")
        assert status.category == "billing"  # the first submission's text decided it, not the second's
        await redress.withdraw(data["complaint_id"], Withdrawal(by="customer"))
        assert (await redress.outcome(data["complaint_id"])).stage.value == "withdrawn"
        with pytest.raises(AlreadyExists):  # not even once the case has ended
            await redress.submit(data)

        async def runs():
            found = [w async for w in env.client.list_workflows(f"WorkflowId = 'complaint-{data['complaint_id']}'")]
            return found if found else None

        assert len(await eventually(runs)) == 1


async def test_low_csat_reopens_the_case_with_a_new_resolution_deadline(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(
            redress,
            text="The kettle stopped working after two days.",
            customer={"id": f"c-7-{uuid.uuid4().hex[:6]}", "language": "en"},
            respond_as="sam.taylor",
        )
        await redress.resolve(
            cid,
            Resolution(agent="sam.taylor", summary="Explained how to reset it", root_cause="customer_misunderstanding"),
        )
        await stage_is(redress, cid, "follow_up")
        before = (await redress.status(cid)).deadlines["resolution"]

        await redress.customer_feedback(cid, Feedback(score=1, comment="Still broken"))
        status = await stage_is(redress, cid, "reopened")
        assert status.reopen_count == 1 and status.csat == 1
        assert status.deadlines["resolution"].due > before.due and status.deadlines["resolution"].met_at is None
        await eventually(lambda: notices(peer, cid, "reopened"))  # notices are sent after the stage changes

        with pytest.raises(Refused, match="feedback is taken after"):
            await redress.customer_feedback(cid, Feedback(score=5))
        await redress.record_response(cid, ResponseRecord(agent="sam.taylor", message="A replacement is on its way."))
        await redress.resolve(
            cid, Resolution(agent="sam.taylor", summary="Replaced the kettle", root_cause="product_defect")
        )
        await stage_is(redress, cid, "follow_up")
        await redress.customer_feedback(cid, Feedback(score=4))
        outcome = await redress.outcome(cid)
    assert (outcome.stage.value, outcome.csat, outcome.reopen_count) == ("closed", 4, 1)


async def test_withdraw_ends_the_case_and_tells_the_customer(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(redress)
        await redress.withdraw(cid, Withdrawal(by="customer", reason="sorted it out myself"))
        outcome = await redress.outcome(cid)
        with pytest.raises(Refused, match=r"ended|withdrawn"):
            await redress.record_response(cid, ResponseRecord(agent="li.na"))
    assert outcome.stage.value == "withdrawn"
    assert len(peer.acted("/notify", complaint_id=cid, template="withdrawn")) == 1
    assert peer.acted("/pay") == []


async def test_survey_without_answer_closes_the_case(run_worker, tmp_path):

    rules = write_rules(tmp_path / "short-survey", survey_window="2s")
    async with run_worker(rules=rules) as redress:
        cid = await open_case(redress, respond_as="li.na")
        await redress.resolve(cid, Resolution(agent="li.na", summary="refunded", root_cause="billing_error"))
        outcome = await redress.outcome(cid)
        kinds = [e.kind for e in await redress.timeline(cid)]
    assert outcome.stage.value == "closed" and outcome.csat is None
    assert "survey_expired" in kinds


def test_notices_quote_deadlines_in_utc_whatever_offset_the_complaint_came_with():
    """Found following the README: a +08:00 deadline was quoted with its local clock and the label "UTC"."""
    from datetime import datetime, timedelta, timezone

    from activities.io import notice_params

    beijing = timezone(timedelta(hours=8))
    params = notice_params("C-1", None, None, {"first_response": datetime(2026, 11, 24, 9, 30, tzinfo=beijing)})
    assert params["first_response_due"] == "2026-11-24 01:30 UTC"
