"""HTTP peers fail; the case does not. Retries carry the same Idempotency-Key, so nothing happens twice."""

from __future__ import annotations

from decimal import Decimal

from redress.contract import Feedback, RemedyProposal, Resolution, ResponseRecord
from tests.helpers.cases import complaint, eventually, notices, open_case, stage_is

DUPLICATE_CHARGE = RemedyProposal(
    kind="refund", amount=Decimal("50"), currency="CNY", reason="duplicate charge", proposed_by="li.na"
)  # within an agent's authority: paid at once


async def test_transient_peer_failure_is_retried_and_delivered_once(run_worker, peer):
    peer.script("/notify", fail=[503, 502])
    async with run_worker() as redress:
        data = complaint()
        cid = data["complaint_id"]
        await redress.submit(data)
        await stage_is(redress, cid, "acknowledged", timeout=30)
    attempts = peer.received("/notify", complaint_id=cid, template="acknowledgement")
    assert len(attempts) == 3
    assert len({a.key for a in attempts}) == 1 and attempts[0].key
    assert len(peer.acted("/notify", complaint_id=cid, template="acknowledgement")) == 1


async def test_payment_whose_answer_is_lost_is_retried_without_paying_twice(run_worker, peer):
    """The peer pays, then the answer times out: the retry's same key gets the stored answer."""
    peer.script("/pay", stall_seconds=[3.0])
    async with run_worker(http_timeout=1.0) as redress:
        cid = await open_case(redress)
        await redress.propose_remedy(cid, DUPLICATE_CHARGE)
        status = await stage_is(redress, cid, "remedy_executed", timeout=30)
    attempts = peer.received("/pay", complaint_id=cid)
    assert len(attempts) >= 2 and {a.key for a in attempts} == {f"remedy:{cid}:P1"}
    assert len(peer.acted("/pay", complaint_id=cid)) == 1
    assert status.remedies[0].transaction_id == "tx-1"


async def test_payment_refused_with_4xx_goes_back_to_a_person_and_the_case_lives_on(run_worker, peer, env):
    peer.script("/pay", fail=[422])
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        await redress.propose_remedy(cid, DUPLICATE_CHARGE)

        async def failed():
            status = await redress.status(cid)
            return status if status.remedies and status.remedies[0].status.value == "failed" else None

        status = await eventually(failed)
        assert status.stage.value == "in_progress"
        assert len(peer.received("/pay", complaint_id=cid)) == 1  # not retried
        staff = await eventually(lambda: notices(peer, cid, "remedy_failed"))
        assert staff[0].body["role"] == "team_lead" and "HTTP 422" in staff[0].body["text"]
        # a person can try again
        answer = await redress.propose_remedy(
            cid,
            RemedyProposal(
                kind="coupon", amount=Decimal("30"), currency="CNY", reason="retry as coupon", proposed_by="li.na"
            ),
        )
        assert answer.proposal_id == "P2"
        await stage_is(redress, cid, "remedy_executed")


async def test_without_endpoints_everything_goes_to_the_local_outbox_once(run_worker, tmp_path):
    async with run_worker(use_peer=False) as redress:
        data = complaint()
        cid = data["complaint_id"]
        await redress.submit(data)
        await stage_is(redress, cid, "acknowledged")
        await redress.propose_remedy(
            cid,
            RemedyProposal(kind="refund", amount=Decimal("20"), currency="CNY", reason="goodwill", proposed_by="li.na"),
        )
        await stage_is(redress, cid, "remedy_executed")
    from activities.outbox import Outbox

    entries = [e for e in Outbox(tmp_path / "data" / "outbox.jsonl").entries() if e["complaint_id"] == cid]
    assert [e.get("template", e.get("audience")) for e in entries] == ["acknowledgement", "payment", "remedy_executed"]
    assert len({e["key"] for e in entries}) == 3
    assert "Li Lei" not in entries[1].values()  # the payment entry carries no contact details


async def test_notice_refused_by_the_peer_is_recorded_and_the_case_goes_on(run_worker, peer, env):
    peer.script("/notify", fail=[400])
    async with run_worker() as redress:
        data = complaint()
        cid = data["complaint_id"]
        await redress.submit(data)

        async def recorded():
            return [e for e in await redress.timeline(cid) if e.kind == "notice_failed"]

        [failed] = await eventually(recorded)
        assert failed.data["template"] == "acknowledgement" and "HTTP 400" in failed.detail
        status = await redress.status(cid)
        assert status.stage.value == "triaged"  # not acknowledged: the customer never got it
        await redress.record_response(cid, ResponseRecord(agent="li.na", message="We called you instead."))
        await stage_is(redress, cid, "in_progress")
        assert len(await eventually(lambda: notices(peer, cid, "progress"))) == 1
        from temporalio.client import WorkflowExecutionStatus

        assert (await redress.handle(cid).describe()).status == WorkflowExecutionStatus.RUNNING


async def test_a_remedys_notice_refused_by_the_notifier_is_recorded_and_the_payment_stands(run_worker, peer):
    """The remedy's notice is sent within the payment's step: its refusal must not undo or repeat the payment."""
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        peer.script("/notify", fail=[400])
        await redress.propose_remedy(cid, DUPLICATE_CHARGE)
        status = await stage_is(redress, cid, "remedy_executed")

        async def recorded():
            return [e for e in await redress.timeline(cid) if e.kind == "notice_failed"]

        [failed] = await eventually(recorded)
    assert failed.data["template"] == "remedy_executed" and "HTTP 400" in failed.detail
    assert status.remedies[0].status.value == "executed" and status.remedies[0].transaction_id == "tx-1"
    [payment] = peer.received("/pay", complaint_id=cid)
    assert "then_tell" not in payment.body and "Li Lei" not in str(payment.body)  # no contact details to the payer
    assert len(peer.received("/notify", complaint_id=cid, template="remedy_executed")) == 1  # refused: not retried


async def test_a_remedys_notice_the_notifier_misses_is_sent_later_once(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        peer.script("/notify", fail=[503])
        await redress.propose_remedy(cid, DUPLICATE_CHARGE)
        await stage_is(redress, cid, "remedy_executed")
        [sent] = await eventually(lambda: notices(peer, cid, "remedy_executed"))
        assert not [e for e in await redress.timeline(cid) if e.kind == "notice_failed"]
    attempts = peer.received("/notify", complaint_id=cid, template="remedy_executed")
    assert len(attempts) == 2 and {a.key for a in attempts} == {sent.key}
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


async def test_the_closing_notice_waits_out_the_notifier_and_the_record_learns_of_the_end_first(run_worker, peer):
    """The end of a case is one step: the customer's record, then the closing notice.

    A notifier outage costs neither.
    """
    data = complaint()
    cid = data["complaint_id"]
    async with run_worker() as redress:
        await redress.submit(data)
        await stage_is(redress, cid, "acknowledged")
        await redress.record_response(cid, ResponseRecord(agent="li.na"))
        await redress.resolve(cid, Resolution(agent="li.na", summary="refunded", root_cause="billing_error"))
        await stage_is(redress, cid, "follow_up")
        peer.script("/notify", fail=[503, 503])
        await redress.customer_feedback(cid, Feedback(score=5))
        outcome = await redress.outcome(cid)
        record = await redress.customer_record(data["customer"]["id"])
    assert outcome.stage.value == "closed"
    assert [(c.complaint_id, c.open) for c in record.cases] == [(cid, False)]
    attempts = peer.received("/notify", complaint_id=cid, template="closed")
    assert len(attempts) == 3 and len({a.key for a in attempts}) == 1
    assert len(peer.acted("/notify", complaint_id=cid, template="closed")) == 1
