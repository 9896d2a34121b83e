"""The category decided by evidence, not by rule order (issue 20): `category_by: evidence` in the rules."""

from __future__ import annotations

import shutil
import uuid

import pytest

from activities.io import TriageFacts
from activities.rules import RulesInvalid, load_rules
from activities.rules.engine import triage
from redress.contract import ComplaintInput
from tests.helpers.cases import complaint
from tests.helpers.processes import ROOT

RULES = """
category_by: evidence
defaults: {category: other, queue: general, severity: general}
rules:
  - name: refund-words
    keywords: [refund, 退款]
    set: {category: billing, queue: billing}
  - name: damaged
    keywords: [damaged, smashed, 破损, 摔坏]
    set: {category: delivery, queue: logistics}
  - name: rude
    keywords: [rude, 态度]
    weight: 2
    set: {category: attitude, queue: service}
  - name: late
    keywords: [late]
    set: {category: delivery, queue: logistics}
  - name: vip-desk
    when: tags.exists(t, t == "vip")
    set: {queue: vip}
"""


def rules_with(tmp_path, text: str = RULES):
    folder = tmp_path / f"rules-{uuid.uuid4().hex[:6]}"
    shutil.copytree(ROOT / "rules", folder, ignore=shutil.ignore_patterns("tests"))
    (folder / "routing.yaml").write_text(text, encoding="utf-8")
    return load_rules(folder)


def decide(rules, text: str, **overrides):
    return triage(rules, TriageFacts.of(ComplaintInput.model_validate(complaint(text=text, **overrides))))


def test_several_words_about_one_thing_outweigh_what_the_customer_asks_for(tmp_path):
    rules = rules_with(tmp_path)
    result = decide(rules, "快递送到时箱子破损，电水壶摔坏了，要求退款。")  # the README's demo
    assert (result.category, result.queue) == ("delivery", "logistics")
    assert result.evidence == {"billing": 1.0, "delivery": 2.0}
    assert result.decided_by == "delivery 2 (damaged 2) over billing 1"
    by_rule = {r.rule: r.fired for r in result.rules}
    assert by_rule["refund-words"] and by_rule["damaged"]  # the refund rule still fired: it lost on evidence


def test_weights_count_and_a_tie_goes_to_the_rule_that_comes_first(tmp_path):
    rules = rules_with(tmp_path)
    rude = decide(rules, "The courier was rude and the parcel was late")
    assert (rude.category, rude.queue) == ("attitude", "service")  # one word of weight 2 against one of 1
    assert rude.evidence == {"attitude": 2.0, "delivery": 1.0}
    even = decide(rules, "The courier was rude and the parcel was damaged and smashed")
    assert even.category == "delivery" and even.evidence == {"delivery": 2.0, "attitude": 2.0}
    assert even.decided_by == "delivery 2 (damaged 2); tied with attitude 2: delivery's rule damaged comes first"
    tie = decide(rules, "I want a refund, the parcel was damaged")
    assert (tie.category, tie.queue) == ("billing", "billing")  # 1 against 1: refund-words comes first
    assert tie.decided_by == "billing 1 (refund-words 1); tied with delivery 1: billing's rule refund-words comes first"
    two_rules = decide(rules, "late and damaged")
    assert two_rules.evidence == {"delivery": 2.0} and two_rules.decided_by == "delivery 2 (damaged 1, late 1)"


def test_a_routing_rule_without_a_category_decides_the_queue_and_nothing_found_is_the_default(tmp_path):
    rules = rules_with(tmp_path)
    vip = decide(rules, "the parcel was damaged", tags=["vip"])
    assert (vip.category, vip.queue) == ("delivery", "vip")
    nothing = decide(rules, "just saying hello")
    assert (nothing.category, nothing.queue) == ("other", "general")
    assert nothing.evidence == {} and nothing.decided_by == "no fired rule sets a category: the default"


def test_first_match_stays_the_default_and_weights_are_bounded(tmp_path):
    rules = rules_with(tmp_path, RULES.replace("category_by: evidence\n", ""))
    result = decide(rules, "快递送到时箱子破损，电水壶摔坏了，要求退款。")
    assert result.category == "billing" and result.evidence is None and result.decided_by is None
    for weight in ("0", "-1", "101", "lots"):
        with pytest.raises(RulesInvalid) as invalid:
            rules_with(tmp_path, RULES.replace("weight: 2", f"weight: {weight}"))
        assert any("routing.yaml" in str(e) and "weight" in str(e) for e in invalid.value.errors)
    with pytest.raises(RulesInvalid) as invalid:
        rules_with(tmp_path, RULES.replace("category_by: evidence", "category_by: vibes"))
    assert any("category_by" in str(e) for e in invalid.value.errors)


def test_a_rule_with_negation_does_not_count_what_the_customer_says_was_not_so(tmp_path):
    rules = rules_with(
        tmp_path,
        RULES.replace(
            "    keywords: [damaged, smashed, 破损, 摔坏]\n",
            "    keywords: [damaged, smashed, 破损, 摔坏]\n    negation: true\n",
        ),
    )
    cases = {
        "The box was not damaged, I want a refund": "billing",
        "The parcel wasn't damaged at all, but I want a refund": "billing",
        "箱子没有破损，我要退款": "billing",
        "箱子没被摔坏，我要退款": "billing",
        "The box was not only damaged but smashed, refund": "delivery",  # "not only" is no negation
        "箱子不但破损，而且摔坏了，要退款": "delivery",
        "It was not damaged... well, actually it arrived damaged and smashed; refund": "delivery",
    }
    for text, category in cases.items():
        assert decide(rules, text).category == category, text
    # without `negation`, what is said is counted as before
    plain = rules_with(tmp_path)
    assert decide(plain, "The box was not damaged, the kettle was smashed, I want a refund").category == "delivery"
    assert decide(plain, "The box was not damaged, I want a refund").evidence == {"billing": 1.0, "delivery": 1.0}
    refund = decide(rules, "I still have not been refunded")
    assert refund.category == "billing"  # a rule without negation: "not refunded" is still about a refund
