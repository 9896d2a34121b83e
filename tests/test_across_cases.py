"""What the engine remembers from one case to the next: repeat complaints and the churn watch."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from redress.contract import Feedback, Resolution, Withdrawal
from tests.helpers.cases import eventually, notices, open_case, stage_is
from tests.helpers.rules import write_rules


def customer(prefix: str) -> dict:
    return {"id": f"{prefix}-{uuid.uuid4().hex[:8]}", "language": "en"}


async def test_the_third_complaint_in_the_window_is_flagged_repeat_and_urgent(run_worker):
    who = customer("repeat")
    async with run_worker() as redress:
        statuses = []
        for number in range(1, 4):
            cid = await open_case(
                redress,
                customer=who,
                text="The app keeps logging me out",
                order={"id": f"SO-{number}", "value": "20", "currency": "CNY"},
            )
            statuses.append(await redress.status(cid))
        record = await redress.customer_record(who["id"])
        outcomes = []
        for status in statuses:  # ended, each reports whether it was a repeat complaint (report's repeat rate)
            await redress.withdraw(status.complaint_id, Withdrawal(by="li.na", reason="test over"))
            outcomes.append(await redress.outcome(status.complaint_id))
    assert [s.severity.value for s in statuses] == ["general", "general", "urgent"]
    assert ["repeat" in s.tags for s in statuses] == [False, False, True]
    assert [c.complaint_id for c in record.cases] == [s.complaint_id for s in statuses]
    assert [o.repeat_complaint for o in outcomes] == [False, True, True]  # complained before within the window


async def test_a_second_open_complaint_about_the_same_order_is_flagged(run_worker):
    who = customer("dup")
    order = {"id": f"SO-{uuid.uuid4().hex[:6]}", "value": "99", "currency": "CNY"}
    async with run_worker() as redress:
        first = await open_case(redress, customer=who, order=order, text="Parcel never arrived")
        second = await open_case(redress, customer=who, order=order, text="Still no parcel, 3rd time asking")
        assert "duplicate_order" not in (await redress.status(first)).tags
        assert "duplicate_order" in (await redress.status(second)).tags
        for cid in (first, second):
            await redress.withdraw(cid, Withdrawal(by="customer"))
            await redress.outcome(cid)

        async def both_ended():
            record = await redress.customer_record(who["id"])
            return not any(c.open for c in record.cases)

        await eventually(both_ended)
        third = await open_case(redress, customer=who, order=order, text="One more question about it")
        assert "duplicate_order" not in (await redress.status(third)).tags  # the others have ended


@pytest.fixture
def churn_rules(tmp_path):
    rules = write_rules(tmp_path / "churn-rules")
    text = (rules / "across_cases.yaml").read_text(encoding="utf-8")
    (rules / "across_cases.yaml").write_text(text.replace("  window: 30d", "  window: 3s"), encoding="utf-8")
    return rules


async def close_case(redress, who: dict, profile: str) -> str:
    cid = await open_case(
        redress, customer=who, respond_as="li.na", text="The kettle leaks", metadata={"customer_profile": profile}
    )
    await redress.resolve(cid, Resolution(agent="li.na", summary="replaced the kettle", root_cause="product_defect"))
    await stage_is(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=4))
    assert (await redress.outcome(cid)).stage.value == "closed"
    return cid


async def test_churn_watch_sends_the_care_package_once_without_a_purchase(run_worker, peer, churn_rules):
    who = customer("quiet")
    async with run_worker(rules=churn_rules) as redress:
        cid = await close_case(redress, who, "price_sensitive")
        care = await eventually(lambda: notices(peer, cid, "care_coupon"), timeout=30)

        async def recorded():
            record = await redress.customer_record(who["id"])
            return record if record.care_sent else None

        record = await eventually(recorded)
        await asyncio.sleep(2)  # nothing more goes out
    assert len(care) == 1 and "30" in care[0].body["text"]
    assert [(r.key, r.body["kind"], r.body["amount"]) for r in peer.acted("/pay", complaint_id=cid)] == [
        (f"remedy:{cid}:care", "coupon", "30")
    ]
    assert record.care_sent == [cid] and record.watches == []
    assert len(await notices(peer, cid, "care_coupon")) == 1


async def test_a_purchase_within_the_window_ends_the_watch(run_worker, peer, churn_rules):
    stays, leaves = customer("stays"), customer("leaves")
    async with run_worker(rules=churn_rules) as redress:
        kept = await close_case(redress, stays, "experience_oriented")
        await redress.customer_purchased(stays["id"], order_id="SO-NEXT")
        lost = await close_case(redress, leaves, "experience_oriented")
        await eventually(lambda: notices(peer, lost, "care_vip"), timeout=30)  # the other one's watch ran out
        await asyncio.sleep(1)
        record = await redress.customer_record(stays["id"])
    assert await notices(peer, kept, "care_vip") == []
    assert record.last_purchase_at is not None and record.care_sent == [] and record.watches == []
