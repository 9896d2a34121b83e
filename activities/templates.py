"""Rendering customer and staff messages in the customer's language."""

from __future__ import annotations

from collections import defaultdict

from activities.rules.loader import RuleSet


def pick_language(available: dict[str, str], language: str) -> str:
    """Exact tag, then its primary language (zh-CN -> zh), then English."""
    if language in available:
        return language
    primary = language.split("-", 1)[0]
    return primary if primary in available else "en"


def render(rule_set: RuleSet, template: str, language: str, params: dict[str, str]) -> tuple[str, str]:
    """The message text and the language it is in. Missing placeholders render empty rather than fail."""
    texts = rule_set.document.templates[template]
    chosen = pick_language(texts, language)
    return texts[chosen].format_map(defaultdict(str, params)), chosen
