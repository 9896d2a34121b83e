"""The category decided by evidence, not by rule order (issue 20): `category_by: evidence` in the rules."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from activities.io import TriageFacts
from activities.rules import RulesInvalid, load_rules
from activities.rules.engine import triage
from redress.contract import ComplaintInput
from tests.helpers.cases import complaint
from tests.helpers.lab import DATA
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


def test_what_the_customer_asks_for_gives_a_fallback_queue_not_a_category(tmp_path):
    rules = rules_with(
        tmp_path,
        RULES.replace(
            "    keywords: [refund, 退款]\n    set: {category: billing, queue: billing}\n",
            "    keywords: [refund, 退款]\n    set: {fallback_queue: billing, tags: [refund_requested]}\n",
        ),
    )
    alone = decide(rules, "Please refund me")
    assert (alone.category, alone.queue, alone.tags) == ("other", "billing", ["refund_requested"])
    with_topic = decide(rules, "The parcel was damaged, refund me")
    assert (with_topic.category, with_topic.queue) == ("delivery", "logistics")  # the topic's queue wins
    assert with_topic.evidence == {"delivery": 1.0}


WEIGHTED = """
category_by: evidence
defaults: {category: other, queue: general, severity: general}
rules:
  - name: delivery-words
    keywords: [late, parcel, {never arrived: 3}, {arrived in perfect condition: -2}]
    set: {category: delivery, queue: logistics}
  - name: defects
    keywords: [defective, {won't turn on: 2}]
    set: {category: quality, queue: quality}
"""


def test_a_keyword_can_carry_its_own_weight_and_praise_counts_against_its_category(tmp_path):
    rules = rules_with(tmp_path, WEIGHTED)
    lost = decide(rules, "The parcel never arrived")
    assert lost.evidence == {"delivery": 4.0} and lost.decided_by == "delivery 4 (delivery-words 4)"
    fine = decide(rules, "The parcel arrived in perfect condition but the lamp won't turn on")
    assert fine.category == "quality" and fine.evidence == {"delivery": -1.0, "quality": 2.0}
    only_praise = decide(rules, "It arrived in perfect condition")
    assert (only_praise.category, only_praise.queue) == ("other", "general")
    # evidence against alone never makes a rule fire: no category, severity, tag or queue from praise
    assert only_praise.decided_by == "no fired rule sets a category: the default"
    [praise] = [r for r in only_praise.rules if r.rule == "delivery-words"]
    assert not praise.fired and praise.reason.startswith(
        "only evidence against it found ('arrived in perfect condition')"
    )
    with pytest.raises(RulesInvalid) as invalid:  # weights mean nothing when the first match decides
        rules_with(tmp_path, WEIGHTED.replace("category_by: evidence\n", ""))
    assert any(
        "category_by: evidence" in str(e) and "routing.yaml:5:5: rules.0.keywords" in str(e)
        for e in invalid.value.errors
    )
    for bad in ("{never arrived: 300}", "{never arrived: 3, lost: 1}", "{never arrived: lots}"):
        with pytest.raises(RulesInvalid) as invalid:
            rules_with(tmp_path, WEIGHTED.replace("{never arrived: 3}", bad))
        assert any("routing.yaml:6:" in str(e) for e in invalid.value.errors), [str(e) for e in invalid.value.errors]


def test_keywords_match_words_and_the_longest_wins():
    from activities.rules.keywords import KeywordIndex

    index = KeywordIndex(
        [
            ["car", "sue", "refund", "charge", "stop", "foreclos*"],
            ["吵", "火", "券", "坏", "脏"],
            ["delivered"],
            ["not delivered"],
        ]
    )

    def found(text: str) -> dict[int, list[str]]:
        return index.matches(text)

    assert found("My card was charged") == {0: ["charge"]}  # no "car" in "card"; charged is charge's inflection
    assert found("There is an issue") == {}  # no "sue" in "issue"
    assert found("Two refunds, both refunded; it stopped; cars") == {0: ["refund", "stop", "car"]}
    assert found("the foreclosure and the foreclosed house") == {0: ["foreclos*"]}
    assert found("refundable? stopper? carpet?") == {}  # not inflections: other words
    assert found("Not delivered yet") == {3: ["not delivered"]}  # "delivered" inside it does not count again
    assert found("It was delivered") == {2: ["delivered"]}
    # one Chinese character is a word only where it is one, or ends a longer word (the compound's head)
    assert found("店里太吵了") == {1: ["吵"]}
    assert found("他们吵架了") == {}
    assert found("坐火车来的") == {}
    assert found("优惠券用不了，电水壶摔坏了") == {1: ["券", "坏"]}
    assert found("洗手间脏得没法用") == {1: ["脏"]}  # a particle after it makes no other word


def test_a_category_can_be_made_to_need_more_than_a_weak_word(tmp_path):
    rules = rules_with(tmp_path, WEIGHTED.replace("rules:\n", "evidence_to_decide: 1\nrules:\n", 1))
    weak = decide(rules, "my neighbour's parcel")  # one word of 1 ('parcel') is enough; nothing weaker would be
    assert weak.category == "delivery"
    with_half = rules_with(tmp_path, WEIGHTED.replace("rules:\n", "evidence_to_decide: 1.5\nrules:\n", 1))
    short = decide(with_half, "my neighbour's parcel")
    assert (short.category, short.queue) == ("other", "general")
    assert short.decided_by == "no category has evidence enough (delivery 1) (at least 1.5 needed): the default"
    assert decide(with_half, "the parcel never arrived").category == "delivery"  # 1 + 3
    with pytest.raises(RulesInvalid):
        rules_with(tmp_path, WEIGHTED.replace("rules:\n", "evidence_to_decide: -1\nrules:\n", 1))


def test_folding_skips_steps_that_would_change_nothing_and_still_equals_nfkc():
    """fold() narrows full-width forms itself and normalises only what is still not normal: the result must be
    NFKC's, casefolded, on real complaints and on random mixes of what changes under NFKC."""
    import random

    from activities.rules.keywords import fold

    texts = [json.loads(line)["text"] for line in (DATA / "ecommerce_complaints.jsonl").open(encoding="utf-8")]
    rng = random.Random(20261130)
    pool = [chr(c) for c in [*range(0x20, 0x7F), *range(0xFF00, 0xFF70)]]
    pool += list("\u3000\u2019\u200b\u0301\u0308\ufb01\u2160\u3002\u4e00\u1e9e\u00df\u0130\u2126\u212b\u00e9e\u0341")
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(5000)]
    bmp = [chr(c) for c in range(0x80, 0x10000) if not 0xD800 <= c <= 0xDFFF]  # each alone and after a typed mark
    texts += bmp + ["\u2019" + c + "\uff0c" for c in bmp]
    assert [t for t in texts if fold(t) != nfkc_reference(t)] == []
    assert fold("\uff32\uff25\uff26\uff35\uff2e\uff24\uff0c\u3000\u2019") == "refund, '"


def test_what_people_type_is_matched_as_the_keywords_say_it(tmp_path):
    """A phone's typographic apostrophe, invisible characters, full-width letters; one stem does not change
    another rule's plain keyword."""
    from activities.rules.keywords import KeywordIndex

    index = KeywordIndex([["refund", "fire"], ["refund*"], ["hasn't reached"]], respects_negation={0})
    assert index.matches("The charger didn\u2019t catch fire") == {}  # negated, as with a typed apostrophe
    assert index.matches("did not \u200bcatch fire") == {}  # a zero-width space hides nothing
    assert index.matches("The refund hasn\u2019t reached me") == {0: ["refund"], 1: ["refund*"], 2: ["hasn't reached"]}
    assert index.matches("\uff32\uff25\uff26\uff35\uff2e\uff24 now") == {
        0: ["refund"],
        1: ["refund*"],
    }  # full-width letters (NFKC)
    assert index.matches("not refundable") == {1: ["refund*"]}  # the stem is rule 1's; rule 0 listed the word
    rules = rules_with(
        tmp_path,
        WEIGHTED.replace(
            "    keywords: [defective, {won't turn on: 2}]", "    keywords: [defective, refund*, {won't turn on: 2}]"
        ).replace("[late, parcel,", "[late, parcel, {refund: 5},"),
    )
    assert decide(rules, "refund please, the parcel").evidence == {"delivery": 6.0, "quality": 1.0}  # its own weight


def test_a_macro_named_like_a_variable_does_not_hide_the_variable_from_its_condition(tmp_path):
    """`tags.exists(keywords, ...)` binds a name of its own; the same condition may read the real `keywords`.
    CEL must be handed it whichever rule runs first, in the activity's path as in explain's."""
    rules = rules_with(
        tmp_path,
        """defaults: {category: other, queue: general, severity: general}
rules:
  - name: damaged-or-vip
    when: 'tags.exists(keywords, keywords == "vip") || "damaged" in keywords'
    set: {severity: urgent}
  - name: damage-words
    keywords: [damaged]
    when: 'size(keywords) > 0'
    set: {category: delivery}
""",
    )
    facts = TriageFacts.of(ComplaintInput.model_validate(complaint(text="The box was damaged")))
    for explain in (True, False):
        result = triage(rules, facts, explain=explain)
        assert (result.category, result.severity.value) == ("delivery", "urgent"), explain
        assert result.fired[:2] == ["damaged-or-vip", "damage-words"]


def test_junk_text_neither_stops_nor_stalls_the_matcher():
    """Full-width English (every form different: NFKC at once, not a pass per form) and a lone surrogate
    (intake refuses one; triage must not fail on it either)."""
    from activities.rules.keywords import KeywordIndex, fold

    full_width = "".join(map(chr, range(0xFF01, 0xFF5F))) * 200  # 18,800 characters, the 94 forms
    assert fold(full_width) == nfkc_reference(full_width)
    index = KeywordIndex([["refund"], ["破损"]])
    assert index.matches("\uff32\uff25\uff26\uff35\uff2e\uff24, \ud800 破损") == {0: ["refund"], 1: ["破损"]}


def nfkc_reference(text: str) -> str:
    """What keywords.fold must give, spelled out here on its own: NFKC, casefolded, the typographic apostrophes
    as typed ones, the characters that show nothing gone."""
    import re
    import unicodedata

    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.sub("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]", "", re.sub("[\u2018\u2019\u02bc\uff07]", "'", folded))
