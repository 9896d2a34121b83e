"""Triage by keyword and by CEL condition, on the shipped rules, through the real workflow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from activities.io import TriageFacts
from activities.rules import load_rules
from activities.rules.engine import triage
from redress.contract import ComplaintInput
from tests.helpers.cases import complaint, stage_is
from tests.helpers.processes import ROOT


def facts(**overrides) -> TriageFacts:
    return TriageFacts.of(ComplaintInput.model_validate(complaint(**overrides)))


def test_keywords_route_chinese_and_english_texts():
    rules = load_rules(ROOT / "rules")
    cases = {
        "我要退款，订单多扣了钱": ("billing", "billing"),
        "Please refund me, I was charged twice": ("billing", "billing"),
        "快递到了，箱子破损，杯子也碎了": ("delivery", "logistics"),
        "The parcel arrived DAMAGED": ("delivery", "logistics"),
        "你们泄露了我的个人信息": ("privacy", "legal"),
        "You shared my personal data with advertisers": ("privacy", "legal"),
        "The assistant was rude to my mother": ("attitude", "service"),
        "Nothing special, just wanted to say the app is slow": ("other", "general"),
    }
    for text, expected in cases.items():
        result = triage(rules, facts(text=text))
        assert (result.category, result.queue) == expected, text


def test_cel_conditions_raise_severity_and_every_rule_explains_itself():
    rules = load_rules(ROOT / "rules")
    big_order = {"id": "SO-9", "value": "8000", "currency": "CNY"}
    result = triage(rules, facts(text="The TV stopped working", order=big_order))
    assert result.severity.value == "urgent"
    by_rule = {r.rule: r for r in result.rules}
    assert by_rule["high-value-order-is-urgent"].fired
    assert "order.value >= 5000.0" in by_rule["high-value-order-is-urgent"].reason
    assert not by_rule["regulator-referral-is-major"].fired
    assert "is false" in by_rule["regulator-referral-is-major"].reason
    assert by_rule["privacy-to-legal"].reason == "no keyword found in the text"

    small = triage(rules, facts(text="The TV stopped working", order={**big_order, "value": "80"}))
    assert small.severity.value == "general"
    assert triage(rules, facts(text="The TV stopped working", order=None)).severity.value == "general"


def test_conditions_read_the_keywords_found_and_the_outcome():
    """`keywords` reaches CEL only when a condition gets to it (expressions.LAZY_VARIABLES); it must read the same."""
    rules = load_rules(ROOT / "rules")
    for text, offered in {
        "The parcel arrived damaged, the box crushed": True,
        "快递到了，箱子破损": True,
        "My parcel never arrived": False,
        "快递丢失了": False,
    }.items():
        result = triage(rules, facts(text=text))
        assert result.category == "delivery", text
        assert ("damaged-goods-replacement" in {o.rule for o in result.offers}) is offered, text


def test_severity_is_the_highest_asked_for_and_deadlines_follow_the_tier():
    rules = load_rules(ROOT / "rules")
    received = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    result = triage(
        rules, facts(text="The heater caught fire 起火", channel="social", received_at=received.isoformat())
    )
    assert result.severity.value == "major" and result.escalate_to == "director"
    assert result.deadlines["first_response"] == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert result.deadlines["resolution"] == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def test_the_triage_activity_decides_as_explain_does_and_records_the_words_that_fired_each_rule():
    """`explain=False` (what the activity runs) skips the sentences, not the decision: same outcome, same rules
    fired; each fired rule is recorded with the keywords found for it, each offer with none."""
    rules = load_rules(ROOT / "rules")
    texts = [
        "The parcel arrived damaged, the box crushed. I want a refund",
        "快递送到时箱子破损，电水壶摔坏了，要求退款。",
        "客服态度很差，挂我电话，我要投诉！",
        "Delivery is 10 days late, nobody answers my emails. Terrible service.",
        "The kettle is defective and caught fire",
        "Nothing special, just wanted to say hello",
    ]
    for text in texts:
        for channel in ("web", "referral"):
            complaint_facts = facts(text=text, channel=channel)
            explained = triage(rules, complaint_facts)
            recorded = triage(rules, complaint_facts, explain=False)
            assert recorded.fired == explained.fired, text
            # explain: every rule, offer and claimant flag, and the apology rules up to the first that names who
            # apologises
            apology_rules = [r for r in explained.rules if r.rule.startswith("apology_by:")]
            assert recorded.rules == [] and len(explained.rules) == len(rules.document.rules) + len(
                rules.document.offers
            ) + len(rules.document.claimant_flags) + len(apology_rules)
            assert [r.fired for r in apology_rules][-1] and not any(r.fired for r in apology_rules[:-1])
            decided = {"category", "severity", "queue", "tags", "deadlines", "offers", "chains", "text_language"}
            decided |= {"apology_by", "claimant_flag"}
            assert recorded.model_dump(include=decided) == explained.model_dump(include=decided), text
            assert recorded.rules_not_fired + recorded.rules_without_keyword + sum(
                not name.startswith(("offer:", "apology_by:", "claimant_flag:")) for name in recorded.fired_rules
            ) == len(rules.document.rules)

    recorded = triage(rules, facts(text=texts[0], channel="referral"), explain=False)
    assert recorded.fired_rules["damaged-in-transit"] == ["damaged", "crushed"]  # in the order said
    assert recorded.fired_rules["regulator-referral-is-major"] == []  # a condition alone
    assert recorded.fired_rules["offer:damaged-goods-replacement"] == []


async def test_workflow_records_triage_outcome_version_and_fired_rules(run_worker, env):
    async with run_worker() as redress:
        who = {"id": f"c-9-{uuid.uuid4().hex[:6]}", "language": "en"}
        data = complaint(text="Parcel arrived damaged", channel="referral", customer=who)
        cid = data["complaint_id"]
        await redress.submit(data)
        status = await stage_is(redress, cid, "acknowledged")
        assert (status.category, status.queue, status.severity.value) == ("delivery", "logistics", "major")
        triaged = next(e for e in await redress.timeline(cid) if e.kind == "triaged")
        assert triaged.data["rule_version"] == status.rule_version
        assert set(triaged.data["fired"]) >= {"damaged-in-transit", "regulator-referral-is-major"}

        description = await redress.handle(cid).describe()
        attributes = description.typed_search_attributes
        from redress import search_attributes as sa

        assert attributes.get(sa.QUEUE) == "logistics" and attributes.get(sa.SEVERITY) == "major"
        assert attributes.get(sa.CHANNEL) == "referral" and attributes.get(sa.CUSTOMER_ID) == redress.customer_ref(
            data["customer"]["id"]
        )
        assert attributes.get(sa.FIRST_RESPONSE_DUE) == status.deadlines["first_response"].due


def test_per_category_and_queue_targets_replace_the_tier_targets():
    rules = load_rules(ROOT / "rules")
    received = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    quality = triage(rules, facts(text="The kettle is defective", received_at=received.isoformat()))
    assert (quality.category, quality.severity.value) == ("quality", "general")
    assert quality.deadlines["first_response"] == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)  # 24h, not 48h
    assert quality.deadlines["resolution"] == datetime(2026, 3, 7, 9, 0, tzinfo=UTC)  # the tier's 5d

    other = triage(rules, facts(text="The app is slow", received_at=received.isoformat()))
    assert other.deadlines["first_response"] == datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # the tier's 48h

    legal = triage(rules, facts(text="You leaked my personal data", received_at=received.isoformat()))
    assert (legal.queue, legal.severity.value) == ("legal", "urgent")
    assert legal.deadlines["resolution"] == datetime(2026, 3, 7, 9, 0, tzinfo=UTC)  # 5d, not 48h

    fire = triage(rules, facts(text="The kettle is defective and caught fire", received_at=received.isoformat()))
    assert fire.severity.value == "major"  # a major quality case keeps the major tier's 2h
    assert fire.deadlines["first_response"] == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


def test_a_target_override_must_say_which_cases_and_what(tmp_path):
    import shutil

    import pytest

    from activities.rules import RulesInvalid

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    text = (rules / "tiers.yaml").read_text(encoding="utf-8")
    (rules / "tiers.yaml").write_text(
        text.replace("  - {queue: legal, severity: urgent, resolution: 5d}", "  - {resolution: 5d}"), encoding="utf-8"
    )
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules)
    [error] = refused.value.errors
    assert error.path == "targets.1" and "say which cases" in error.message and error.file.endswith("tiers.yaml")
