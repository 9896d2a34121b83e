"""Keyword routing with one Aho-Corasick automaton per rule set: every keyword of every rule in one pass.

Matching is case-insensitive substring matching, which suits Chinese (no word
boundaries) and tolerates English inflections ("refund" matches "refunded").

For a rule that says `negation: true`, a keyword said in the negative does not
count: "not damaged", "wasn't damaged at all", "箱子没有破损", "没被压坏", "不破损"
(only where it matters: "I wasn't refunded" is still about a refund). An
occurrence is negated when a negation ends just before it: in English "not",
"no", "never", "without" or a "-n't" word, up to two words before it (but not
"not only"); in Chinese 没/没有/不/不是/无/未/并非, directly or with 被/有/再/太
between (but not 不但/不仅/不光, "not only"). A keyword counts if any of its
occurrences is not negated. The keyword itself may start with a negation ("not
delivered", "未收到"): only what comes before it is read.
"""

from __future__ import annotations

import re

import ahocorasick

WINDOW = 24  # characters read before an occurrence: two English words and a negation fit
ENGLISH_NEGATION = re.compile(r"(?<![a-z])(?:not|no|never|without|[a-z]+n't)\s+(?:[a-z]+\s+){0,2}$")
NOT_ONLY = re.compile(r"(?<![a-z])not\s+only\s+(?:[a-z]+\s+){0,1}$")
CHINESE_NEGATION = re.compile(r"(?:没有|没|不是|不|无|未|并非)(?:被|有|再|太)?$")
CHINESE_NOT_ONLY = ("不但", "不仅", "不光")
CUES = ("not", "no", "never", "without", "n't", "没", "不", "无", "未", "非")


def negated(before: str) -> bool:
    """Whether the text just before an occurrence (casefolded) says it in the negative."""
    if not any(cue in before for cue in CUES):  # most occurrences: no regex at all
        return False
    if ENGLISH_NEGATION.search(before) and not NOT_ONLY.search(before):
        return True
    tail = before.rstrip()
    return bool(CHINESE_NEGATION.search(tail)) and not tail.endswith(CHINESE_NOT_ONLY)


class KeywordIndex:
    def __init__(self, keywords_per_rule: list[list[str]], respects_negation: set[int] | None = None):
        self._automaton = ahocorasick.Automaton()
        self._respects_negation = frozenset(respects_negation or ())
        owners: dict[str, set[int]] = {}
        for rule_index, keywords in enumerate(keywords_per_rule):
            for keyword in keywords:
                owners.setdefault(keyword.casefold(), set()).add(rule_index)
        for keyword, rules in owners.items():
            self._automaton.add_word(keyword, (keyword, frozenset(rules)))
        self._empty = not owners
        if not self._empty:
            self._automaton.make_automaton()

    def matches(self, text: str) -> dict[int, list[str]]:
        """Rule index -> the keywords of that rule found in the text, in order of first appearance."""
        found: dict[int, list[str]] = {}
        if self._empty:
            return found
        # each keyword once, in order of first appearance, and whether it was said once not in the negative
        seen: dict[str, tuple[frozenset[int], bool]] = {}
        folded = text.casefold()
        careful = bool(self._respects_negation)
        for end, (keyword, rules) in self._automaton.iter(folded):
            if keyword in seen and (seen[keyword][1] or not careful):
                continue
            start = end - len(keyword) + 1
            affirmed = not careful or not negated(folded[max(0, start - WINDOW) : start])
            seen[keyword] = (rules, affirmed)  # only a keyword not yet affirmed gets here
        for keyword, (rules, affirmed) in seen.items():
            for rule_index in rules:
                if affirmed or rule_index not in self._respects_negation:
                    found.setdefault(rule_index, []).append(keyword)
        return found
