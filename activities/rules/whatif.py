"""What a rule change would do: every complaint triaged under two rule sets, and what differs.

`redress rules lab CORPUS --against OTHER_DIR` compares the rules in force (`--rules`)
with a candidate folder over a corpus; `redress rules lab --open` does it for the cases
running now, each under the version it is pinned to against what a retriage would use
(the `--against` folder, else the current rules). Nothing is started or changed.

A complaint's decision is what triage decides and an agent or customer would notice:
category, severity, queue, each deadline (as a span from when the customer complained),
the remedies offered, and which of them need a supervisor's approval (and whose). Two
decisions differ in an aspect when that part differs; a complaint is listed once with
every aspect that changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from activities.io import TriageFacts
from activities.rules.approvals import check_offer
from activities.rules.engine import triage
from activities.rules.loader import RuleSet

ASPECTS = ("category", "severity", "queue", "deadlines", "offers", "approval")


@dataclass(frozen=True)
class Decision:
    """What triage decided for one complaint under one rule set, in the terms the what-if compares."""

    rule_version: str
    category: str
    severity: str
    queue: str
    deadlines: tuple[tuple[str, str], ...]  # (name, span from received, e.g. "48h")
    offers: tuple[str, ...]  # "refund 90.00 CNY"
    approval: tuple[str, ...]  # for each offer that needs one: "refund 90.00 CNY: team_lead"

    def aspect(self, name: str) -> str:
        """One aspect as a short text (for tables and the HTML page)."""
        value = getattr(self, name)
        if name == "deadlines":
            return ", ".join(f"{deadline} {span}" for deadline, span in value) or "none"
        if isinstance(value, tuple):
            return ", ".join(value) or "none"
        return str(value)


def decide(rule_set: RuleSet, facts: TriageFacts) -> Decision:
    """Triage `facts` with `rule_set` (as the activity does) and name what an agent would see of it."""
    result = triage(rule_set, facts, explain=False)
    start = facts.received_at
    spans = [(name, _span(due - start)) for name, due in result.deadlines.items()]
    offers, approval = [], []
    for offer in result.offers:
        said = offer.kind.value + (f" {offer.amount} {offer.currency}" if offer.amount else "")
        offers.append(said)
        verdict = check_offer(rule_set, facts.complaint_id, offer)
        if verdict.needs_approval:
            approval.append(f"{said}: {verdict.approvers()}")
    return Decision(
        rule_version=rule_set.version,
        category=result.category,
        severity=result.severity.value,
        queue=result.queue,
        deadlines=tuple(spans),
        offers=tuple(offers),
        approval=tuple(approval),
    )


def _span(span: timedelta) -> str:
    """48h, 30m, 2d4h: how long a deadline gives, as tiers.yaml writes it."""
    minutes = round(span.total_seconds() / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n) or "0m"


@dataclass(frozen=True)
class Change:
    """One complaint whose decision differs."""

    ref: str  # "line 12" in a corpus, the complaint id of a running case
    before: Decision
    after: Decision
    aspects: tuple[str, ...]
    note: str = ""  # a corpus complaint's text (the admin's own file) or a running case's stage, never its text

    def as_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "changed": list(self.aspects),
            "before": {name: self.before.aspect(name) for name in self.aspects},
            "after": {name: self.after.aspect(name) for name in self.aspects},
            "rule_versions": [self.before.rule_version, self.after.rule_version],
            "note": self.note,
        }


@dataclass
class WhatIf:
    """Two rule sets over the same complaints: how many changed, in what, and which."""

    compared: int = 0
    changes: list[Change] = field(default_factory=list)
    by_aspect: Counter[str] = field(default_factory=Counter)
    category_moves: Counter[tuple[str, str]] = field(default_factory=Counter)
    categories: dict[str, Counter[str]] = field(default_factory=lambda: {"before": Counter(), "after": Counter()})
    skipped: list[str] = field(default_factory=list)  # "CASE-1: why" (a running case that could not be read)

    def add(self, ref: str, before: Decision, after: Decision, note: str = "") -> None:
        self.compared += 1
        self.categories["before"][before.category] += 1
        self.categories["after"][after.category] += 1
        aspects = tuple(name for name in ASPECTS if getattr(before, name) != getattr(after, name))
        if not aspects:
            return
        self.changes.append(Change(ref, before, after, aspects, note))
        self.by_aspect.update(aspects)
        if before.category != after.category:
            self.category_moves[(before.category, after.category)] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "changed": len(self.changes),
            "by_aspect": {name: self.by_aspect.get(name, 0) for name in ASPECTS},
            "category_moves": [
                {"from": old, "to": new, "complaints": n} for (old, new), n in self.category_moves.most_common()
            ],
            "categories": {side: dict(counts.most_common()) for side, counts in self.categories.items()},
            "changes": [change.as_json() for change in self.changes],
            "skipped": self.skipped,
        }


def compare(complaints: Iterable[tuple[str, TriageFacts, RuleSet, str]], other: RuleSet) -> WhatIf:
    """Each (ref, facts, the rules it is decided by now, note) under its rules and under `other`.

    A paused case's deadlines are shifted alike under both, so a pause changes no comparison.
    """
    what_if = WhatIf()
    for ref, facts, current, note in complaints:
        what_if.add(ref, decide(current, facts), decide(other, facts), note)
    return what_if
