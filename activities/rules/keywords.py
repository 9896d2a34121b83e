"""Keyword routing with one Aho-Corasick automaton per rule set: every keyword of every rule in one pass.

Matching is case-insensitive substring matching, which suits Chinese (no word
boundaries) and tolerates English inflections ("refund" matches "refunded").
"""

from __future__ import annotations

import ahocorasick


class KeywordIndex:
    def __init__(self, keywords_per_rule: list[list[str]]):
        self._automaton = ahocorasick.Automaton()
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
        distinct: dict[str, frozenset[int]] = {}  # each keyword once, in order of first appearance
        for _, (keyword, rules) in self._automaton.iter(text.casefold()):
            if keyword not in distinct:
                distinct[keyword] = rules
        for keyword, rules in distinct.items():
            for rule_index in rules:
                found.setdefault(rule_index, []).append(keyword)
        return found
