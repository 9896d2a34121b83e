"""Evaluating a rule set: triage, deadlines, offers and approval requirements.

Semantics an admin can predict:
- rules are read top to bottom; every rule is evaluated; `rules explain` reports each (fired or not,
  and why), the triage activity the ones that fired and the keywords found for them (see `triage`);
- category and queue, with `category_by: first_match` (the default): from the first fired rule
  that sets them, else the defaults;
- with `category_by: evidence`: every fired rule that sets a category adds its `weight` times
  the keywords it found (at least one) to that category; the strongest category wins, and on a
  tie the one whose first fired rule comes first in the files. The queue is that of a fired rule
  that sets a queue and no category (an explicit routing), else that of the winning category's
  strongest rule, else the default. So what the customer asks for ("refund") weighs no more than
  any other word, and several words about the same thing outweigh it;
- `fallback_queue` (what a refund request says): the queue of the first fired rule that has one, when
  no fired rule sets a queue (with evidence: none routes and the winner's rules set none);
- severity is the highest any fired rule asks for (rules only ever raise it);
- a rule whose condition fails at run time does not fire, and the reason says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from activities.io import (
    TEAM_CLOCK,
    PauseShift,
    PlannedPayout,
    PlannedStep,
    ShiftedDeadlines,
    TriageFacts,
    TriageResult,
)
from activities.rules.expressions import TRIAGE_VARIABLES, Activation, CompiledCondition
from activities.rules.loader import RuleSet
from activities.rules.schema import DeadlineName, RuleSetDocument
from activities.rules.sentiment import Sentiment, assess, detect_language
from redress.contract import RemedyOffer, Severity
from redress.customers import ClaimantFlag

DEADLINE_NAMES: tuple[DeadlineName, ...] = ("first_response", "resolution", "next_update")


def facts_variables(
    facts: TriageFacts,
    keywords: list[str] | Callable[[], list[str]],
    sentiment: Sentiment | None = None,
    read: frozenset[str] | None = None,
    members: dict[str, frozenset[str]] | None = None,
    paid_currency: str = "CNY",
) -> dict[str, Any]:
    """The CEL view of a complaint: every variable always present, so conditions never hit a missing field.

    `read` and `members` (a rule set's `variables_read` and `members_read`) leave out what no
    condition reads: CEL converts every value it is handed, at 1 to 4 us each, so a triage
    hands it only what its conditions use (`order.value`, not the whole order with its items).
    """
    wanted = TRIAGE_VARIABLES if read is None else read
    members = members or {}
    variables: dict[str, Any] = {}
    if "text" in wanted:
        variables["text"] = facts.text
    if "channel" in wanted:
        variables["channel"] = facts.channel.value
    if "customer" in wanted:
        customer = {
            "id": facts.customer_id,
            "language": facts.language,
            "complaints_90d": facts.complaints_90d,
            "payouts_90d": facts.payouts_90d,
            "paid_amount_90d": float(facts.paid_90d.get(paid_currency, 0)),
            "claims_without_evidence": facts.claims_without_evidence,
            "flagged": facts.claimant_flag is not None,
        }
        variables["customer"] = _only(customer, members.get("customer"))
    if "order" in wanted:
        variables["order"] = _order_variable(facts, members.get("order"))
    if "requested_remedy" in wanted:
        variables["requested_remedy"] = facts.requested_remedy.value if facts.requested_remedy else ""
    if "tags" in wanted:
        variables["tags"] = list(facts.tags)
    if "metadata" in wanted:
        variables["metadata"] = dict(facts.metadata)
    if "keywords" in wanted:
        variables["keywords"] = keywords
    if "sentiment" in wanted:
        sentiment = sentiment or Sentiment(language=None, score=0.0, anger=0.0)
        variables["sentiment"] = _only(sentiment.as_variables(), members.get("sentiment"))
    if "language" in wanted:
        variables["language"] = (sentiment.language if sentiment else None) or ""
    return variables


def _only(value: dict[str, Any], fields: frozenset[str] | None) -> dict[str, Any]:
    return value if fields is None else {name: value[name] for name in fields if name in value}


_ORDER_HEAD = frozenset({"present", "value"})


def _order_variable(facts: TriageFacts, fields: frozenset[str] | None) -> dict[str, Any]:
    order = facts.order
    if fields is not None and fields <= _ORDER_HEAD:  # what conditions mostly read: no items to convert
        head: dict[str, Any] = {}
        if "present" in fields:
            head["present"] = order is not None
        if "value" in fields:
            head["value"] = float(order.value) if order else 0.0
        return head
    return _only(
        {
            "present": order is not None,
            "open_complaints": facts.open_on_order,
            "id": order.id if order else "",
            "value": float(order.value) if order else 0.0,
            "currency": order.currency if order else "",
            "product_sku": (order.product_sku or "") if order else "",
            "items": [
                {"sku": i.sku, "quantity": i.quantity, "unit_price": float(i.unit_price or 0)}
                for i in (order.items if order else [])
            ],
        },
        fields,
    )


def triage(rule_set: RuleSet, facts: TriageFacts, explain: bool = True) -> TriageResult:
    """Decide category, queue, severity, offers and deadlines.

    `explain=False` (the triage activity) records in `fired_rules` only the rules that
    fired, each with the keywords found for it, and counts the rest: with hundreds of
    rules, a sentence for each (or even for each that fired) would cost more than
    deciding, and would bloat every case's history. Nothing is lost: the case pins its
    rule version and keeps its complaint, so `redress rules explain` (every rule, fired
    or not, and why) can say it again at any time.
    """
    doc = rule_set.document
    hits = rule_set.keywords.matches(facts.text)
    sentiment = assess(facts.text) if rule_set.needs_sentiment else None
    text_language = sentiment.language if sentiment else detect_language(facts.text)
    read = rule_set.variables_read  # by the rules or the offers: one conversion serves both

    def all_keywords() -> list[str]:  # for conditions that read `keywords`: only when one gets to it (expressions.py)
        return sorted({keyword for found in hits.values() for keyword in found})

    activation = Activation(
        facts_variables(facts, all_keywords, sentiment, read, rule_set.members_read, doc.repeat.currency)
    )

    category: str | None = None
    queue: str | None = None
    severity = doc.defaults.severity
    rank = severity.rank
    tags: list[str] = []
    fallback_queue: str | None = None
    by_evidence = doc.category_by == "evidence"
    evidence = Evidence()
    firings: list[dict[str, Any]] = []  # RuleFiring's fields, with explain: TriageResult validates them at once
    fired_rules: dict[str, list[str]] = {}  # without: each rule that fired and the keywords found for it
    plans = rule_plans(rule_set)
    # in rule order, as an admin reads them; without explain, only the rules a keyword (or none needed) lets in
    weighed = range(len(plans)) if explain else sorted(hits.keys() | rule_set.rules_without_keywords)
    not_fired = 0
    for index in weighed:
        plan = plans[index]
        found = hits.get(index)
        if explain:
            fired, reason = plan.decide(found, activation)
            firings.append({"rule": plan.name, "fired": fired, "reason": reason})
            if not fired:
                not_fired += 1
                continue
        elif plan.fires(found, activation):
            fired_rules[plan.name] = found or []
        else:
            not_fired += 1
            continue
        if by_evidence:
            evidence.add(index, plan.name, plan.category, plan.queue, plan.evidence(found))
        else:
            category = category or plan.category
            queue = queue or plan.queue
        if plan.rank > rank:
            severity, rank = plan.severity or severity, plan.rank
        if plan.tags:
            tags.extend(t for t in plan.tags if t not in tags)
        fallback_queue = fallback_queue or plan.fallback_queue

    decided_by = None
    if by_evidence:
        category, queue, decided_by = evidence.decide(doc.evidence_to_decide)
    category = category or doc.defaults.category
    queue = queue or fallback_queue or doc.defaults.queue
    outcome = {"category": category, "severity": severity.value, "queue": queue}
    # rules cannot read the outcome (the loader refuses it), so adding it now changes nothing they saw
    activation.add({name: value for name, value in outcome.items() if name in read})
    offers = []
    for plan, offer in zip(offer_plans(rule_set), doc.offers, strict=True):
        if explain:
            fired, reason = plan.decide(None, activation)
            firings.append({"rule": plan.name, "fired": fired, "reason": reason})
        else:
            fired = plan.fires(None, activation)
            if fired:
                fired_rules[plan.name] = []
        if fired:
            offers.append(_offer(offer, facts))
    team_due, team_chain = team_clock(rule_set, severity, queue, facts.received_at)
    claimant_flag = _claimant_flag(rule_set, facts, activation, firings if explain else None)
    if claimant_flag and claimant_flag.by.startswith("rules:") and not explain:
        fired_rules[f"claimant_flag:{claimant_flag.by.removeprefix('rules:')}"] = []
    apology_by = _apologiser(doc, severity, category, queue, facts, firings if explain else None)
    if apology_by and not explain:
        fired_rules[f"apology_by:{apology_by}"] = []

    return TriageResult(
        rule_version=rule_set.version,
        category=category,
        severity=severity,
        queue=queue,
        tags=tags,
        escalate_to=doc.tiers[severity].escalate_to,
        deadlines=deadlines_for(rule_set, severity, facts.received_at, DEADLINE_NAMES, category=category, queue=queue)
        | team_due,
        offers=offers,
        rules=firings,
        fired_rules=fired_rules,
        rules_without_keyword=len(plans) - len(weighed),
        rules_not_fired=0 if explain else not_fired,
        text_language=text_language,
        reply_language=facts.language if facts.language_declared or not text_language else text_language,
        sentiment=sentiment.as_variables() if sentiment else None,
        survey_window_seconds=doc.follow_up.survey_window.total_seconds(),
        reopen_below=doc.follow_up.reopen_below,
        chains=chains_for(rule_set, severity) | team_chain,
        evidence=evidence.totals() if by_evidence else None,
        decided_by=decided_by,
        root_causes=list(doc.root_causes),
        apology_by=apology_by,
        complaints_90d=facts.complaints_90d,
        claimant_flag=claimant_flag,
        team_clocks=list(doc.ola),
    )


def _claimant_flag(
    rule_set: RuleSet, facts: TriageFacts, activation: Activation, firings: list[dict[str, Any]] | None
) -> ClaimantFlag | None:
    """The customer's flag: the one their record holds, else the first of the rules' `claimant_flags` that holds
    (not while a supervisor's clearance runs: they reviewed these facts)."""
    if facts.claimant_flag is not None:
        return facts.claimant_flag
    if facts.flag_cleared_until is not None and facts.flag_cleared_until > facts.received_at:
        return None
    for index, rule in enumerate(rule_set.document.claimant_flags):
        condition = rule_set.condition("claimant_flags", index)
        try:
            fired = condition is not None and condition.evaluate(activation)
            why = _holds(condition) if fired else f"condition `{rule.when}` is false"
        except ValueError as error:  # a condition that cannot be evaluated flags no one
            fired, why = False, f"condition could not be evaluated: {error}"
        if firings is not None:
            firings.append({"rule": f"claimant_flag:{rule.name}", "fired": fired, "reason": why})
        if fired:
            return ClaimantFlag(
                reason=rule.reason, by=f"rules:{rule.name}", at=facts.received_at, complaint_id=facts.complaint_id
            )
    return None


@dataclass(frozen=True, slots=True)
class RulePlan:
    """One rule as triage weighs it, worked out once per rule set: what it needs, what it sets, what to say.

    Triage weighs dozens of rules per complaint; reading them from the validated
    documents (and building the same sentences) every time cost more than deciding.
    """

    name: str
    keyworded: bool
    condition: CompiledCondition | None
    category: str | None = None
    queue: str | None = None
    severity: Severity | None = None
    rank: int = -1
    tags: tuple[str, ...] = ()
    weight: float = 1.0
    fallback_queue: str | None = None
    keyword_weights: dict[str, float] = field(default_factory=dict)
    weighs_against: bool = False  # some keyword counts against the category: the rule may find only those
    holds: str = ""  # "condition `...` is true": what a fired rule with a condition says of it

    def only_against(self, found: list[str]) -> bool:
        """Whether every keyword found counts against the rule's category: that alone never makes a rule fire
        (no severity, tags or queue from "arrived in perfect condition")."""
        return bool(self.keyword_weights) and all(self.keyword_weights.get(k, self.weight) < 0 for k in found)

    def evidence(self, found: list[str] | None) -> float:
        """What the rule counts for its category: its weight per keyword found, or the keyword's own weight."""
        if not found:
            return self.weight
        if not self.keyword_weights:
            return self.weight * len(found)
        return sum(self.keyword_weights.get(keyword, self.weight) for keyword in found)

    def fires(self, found: list[str] | None, activation: Activation) -> bool:
        """Whether the rule fires (a condition that cannot be evaluated does not), without saying why."""
        if self.keyworded and (not found or (self.weighs_against and self.only_against(found))):
            return False
        if self.condition is None:
            return True
        try:
            return self.condition.evaluate(activation)
        except ValueError:  # explain says why it could not be evaluated
            return False

    def why_fired(self, found: list[str] | None) -> str:
        """Why a rule that fired did: the keywords found, and its condition (the sentence is made once per rule)."""
        if not found:
            return self.holds or "always"
        said = f"keyword {', '.join(map(repr, found))} found"
        return f"{said}; {self.holds}" if self.holds else said

    def decide(self, found: list[str] | None, activation: Activation) -> tuple[bool, str]:
        """Whether the rule fires for these keywords found and variables, and the reason an admin reads."""
        if self.keyworded and not found:
            return False, NO_KEYWORD
        if found and self.only_against(found):
            return (
                False,
                f"only evidence against it found ({', '.join(map(repr, found))}): a rule fires on evidence for",
            )
        condition = self.condition
        if condition is not None:
            try:
                holds = condition.evaluate(activation)
            except ValueError as error:
                return False, f"condition `{condition.source}` could not be evaluated: {error}"
            if not holds:
                return False, f"condition `{condition.source}` is false"
        return True, self.why_fired(found)


NO_KEYWORD = "no keyword found in the text"


def rule_plans(rule_set: RuleSet) -> list[RulePlan]:
    if "rule_plans" not in rule_set.memo:
        rule_set.memo["rule_plans"] = [
            RulePlan(
                name=rule.name,
                keyworded=bool(rule.keywords),
                condition=rule_set.condition("rules", index),
                category=rule.set.category,
                queue=rule.set.queue,
                severity=rule.set.severity,
                rank=rule.set.severity.rank if rule.set.severity else -1,
                tags=tuple(rule.set.tags),
                weight=rule.weight,
                fallback_queue=rule.set.fallback_queue,
                keyword_weights=rule.keyword_weights,
                weighs_against=_weighs_against(rule.weight, rule.keyword_weights),
                holds=_holds(rule_set.condition("rules", index)),
            )
            for index, rule in enumerate(rule_set.document.rules)
        ]
    return rule_set.memo["rule_plans"]


def _apologiser(
    doc: RuleSetDocument,
    severity: Severity,
    category: str,
    queue: str,
    facts: TriageFacts,
    firings: list[dict[str, Any]] | None,
) -> str | None:
    """The role the first matching `apology_by` rule names (None: no rule matches); with `firings`, each rule
    weighed says why it matched or not (`rules explain`)."""
    region = facts.metadata.get("region")
    for apology in doc.apology_by:
        matched = apology.matches(severity, category, queue, region)
        if firings is not None:
            why = apology.why()
            firings.append(
                {
                    "rule": f"apology_by:{apology.role}",
                    "fired": matched,
                    "reason": f"matches: {why}" if matched else f"does not match: {why}",
                }
            )
        if matched:
            return apology.role
    return None


def _weighs_against(weight: float, keyword_weights: dict[str, float]) -> bool:
    """Whether a keyword found may count against the rule's category (see RulePlan.only_against)."""
    return bool(keyword_weights) and (weight < 0 or any(w < 0 for w in keyword_weights.values()))


def offer_plans(rule_set: RuleSet) -> list[RulePlan]:
    if "offer_plans" not in rule_set.memo:
        rule_set.memo["offer_plans"] = [
            RulePlan(
                name=f"offer:{offer.name}",
                keyworded=False,
                condition=rule_set.condition("offers", index),
                holds=_holds(rule_set.condition("offers", index)),
            )
            for index, offer in enumerate(rule_set.document.offers)
        ]
    return rule_set.memo["offer_plans"]


def _holds(condition: CompiledCondition | None) -> str:
    return f"condition `{condition.source}` is true" if condition else ""


class Evidence:
    """What the fired rules say a complaint is about, with `category_by: evidence` (see the module's docstring)."""

    def __init__(self) -> None:
        self.by_category: dict[str, list[tuple[float, int, str, str | None]]] = {}  # weight, index, rule, queue
        self.routing: str | None = None  # the first fired rule's queue that sets no category

    def add(self, index: int, rule: str, category: str | None, queue: str | None, weight: float) -> None:
        if category:
            self.by_category.setdefault(category, []).append((weight, index, rule, queue))
        elif queue and self.routing is None:
            self.routing = queue

    def totals(self) -> dict[str, float]:
        return {category: round(sum(w for w, *_ in found), 3) for category, found in self.by_category.items()}

    @staticmethod
    def _listed(totals: dict[str, float]) -> str:
        return ", ".join(f"{category} {total:g}" for category, total in totals.items())

    def decide(self, needed: float = 0) -> tuple[str | None, str | None, str]:
        """The winning category, its queue, and why: words an admin reads in `rules explain` and the triage result.

        A category wins with more than 0 of evidence, and at least `needed` (the rules' `evidence_to_decide`).
        """
        totals = self.totals()
        if not any(total > 0 and total >= needed for total in totals.values()):
            if not totals:
                return None, self.routing, "no fired rule sets a category: the default"
            short = f" (at least {needed:g} needed)" if needed and any(t > 0 for t in totals.values()) else ""
            return None, self.routing, f"no category has evidence enough ({self._listed(totals)}){short}: the default"
        first_fired = {category: min(i for _, i, *_ in found) for category, found in self.by_category.items()}
        ranked = sorted(totals, key=lambda c: (-totals[c], first_fired[c]))
        winner = ranked[0]
        first = min(self.by_category[winner], key=lambda f: f[1])
        queued = [f for f in self.by_category[winner] if f[3]]
        queue = self.routing or (min(queued, key=lambda f: (-f[0], f[1]))[3] if queued else None)
        parts = ", ".join(f"{rule} {weight:g}" for weight, _, rule, _ in self.by_category[winner])
        why = f"{winner} {totals[winner]:g} ({parts})"
        if len(ranked) > 1:
            runner = ranked[1]
            if totals[runner] == totals[winner]:
                why += f"; tied with {runner} {totals[runner]:g}: {winner}'s rule {first[2]} comes first"
            else:
                why += f" over {runner} {totals[runner]:g}"
        return winner, queue, why


def _offer(offer: Any, facts: TriageFacts) -> RemedyOffer:
    amount = Decimal("0")
    currency = offer.currency
    if offer.amount is not None:
        amount = offer.amount
    elif offer.order_value_share is not None and facts.order is not None:
        amount = (facts.order.value * offer.order_value_share).quantize(Decimal("0.01"))
        currency = currency or facts.order.currency
    return RemedyOffer(rule=offer.name, kind=offer.kind, amount=amount, currency=currency)


def targets_for(rule_set: RuleSet, severity: Severity, category: str | None, queue: str | None) -> dict[str, timedelta]:
    """The tier's targets, each replaced by the first matching per-category/queue override.

    Worked out once per rule set and outcome; what is returned is the memo itself, never to be changed.
    """
    key = ("targets", severity, category, queue)
    targets = rule_set.memo.get(key)
    if targets is None:
        targets = rule_set.memo[key] = _targets_for(rule_set, severity, category, queue)
    return targets


def _targets_for(
    rule_set: RuleSet, severity: Severity, category: str | None, queue: str | None
) -> dict[str, timedelta]:
    tier = rule_set.document.tiers[severity]
    targets = {"first_response": tier.first_response, "resolution": tier.resolution}
    if tier.next_update:
        targets["next_update"] = tier.next_update
    for name in ("first_response", "resolution", "next_update"):
        override = next(
            (o for o in rule_set.document.targets if getattr(o, name) and o.matches(category, queue, severity)), None
        )
        if override:
            targets[name] = getattr(override, name)
    return targets


def deadlines_for(
    rule_set: RuleSet,
    severity: Severity,
    start: datetime,
    names: Sequence[str],
    paused: timedelta = timedelta(0),
    category: str | None = None,
    queue: str | None = None,
) -> dict[str, datetime]:
    """Absolute due times of the named deadlines the tier has: calendar time, or working time when the tier
    names a business calendar."""
    tier = rule_set.document.tiers[severity]
    spans = targets_for(rule_set, severity, category, queue)
    calendar = rule_set.calendars.get(tier.calendar) if tier.calendar else None
    due = {}
    for name in names:
        span = spans.get(name)
        if span is None:
            continue
        if paused and name != "next_update":  # a period from the last contact owes nothing to earlier pauses
            span += paused
        due[name] = start + span if calendar is None else calendar.add(start, span)
    return due


def shift_for_pause(rule_set: RuleSet, shift: PauseShift) -> ShiftedDeadlines:
    """Move each deadline still ahead at the pause by the paused time, counted as its tier counts time.

    In working time a pause over a weekend costs nothing: what was left of the
    target when the pause began is what is left when it ends.
    """
    tier = rule_set.document.tiers[shift.severity]
    calendar = rule_set.calendars.get(tier.calendar) if tier.calendar else None
    moved = {}
    for name, due in shift.deadlines.items():
        if due <= shift.paused_from:
            moved[name] = due  # already missed before the pause: a pause does not undo a breach
        elif calendar is None:
            moved[name] = due + (shift.paused_to - shift.paused_from)
        else:
            moved[name] = calendar.add(shift.paused_to, calendar.between(shift.paused_from, due))
    paused = calendar.between(shift.paused_from, shift.paused_to) if calendar else shift.paused_to - shift.paused_from
    return ShiftedDeadlines(deadlines=moved, paused_seconds=paused.total_seconds())


def deadline_names(
    rule_set: RuleSet, severity: Severity, category: str | None = None, queue: str | None = None
) -> list[DeadlineName]:
    return [name for name in DEADLINE_NAMES if name in targets_for(rule_set, severity, category, queue)]


def chains_for(rule_set: RuleSet, severity: Severity) -> dict[str, list[PlannedStep]]:
    """Each deadline's escalation chain; without one, a miss notifies the tier's escalate_to role.

    Worked out once per rule set and tier; every case gets its own lists (the steps are never changed).
    """
    key = ("chains", severity)
    if key not in rule_set.memo:
        rule_set.memo[key] = _chains_for(rule_set, severity)
    return {name: list(steps) for name, steps in rule_set.memo[key].items()}


def team_clock(
    rule_set: RuleSet, severity: Severity, queue: str, start: datetime
) -> tuple[dict[str, datetime], dict[str, list[PlannedStep]]]:
    """The team clock (OLA) of a case handed to `queue` at `start`: its due time and chain, under the name
    `ola:<queue>`; nothing when the queue has none. Counted as the case's tier counts time."""
    clock = rule_set.document.ola.get(queue)
    if clock is None:
        return {}, {}
    tier = rule_set.document.tiers[severity]
    calendar = rule_set.calendars.get(tier.calendar) if tier.calendar else None
    due = start + clock.within if calendar is None else calendar.add(start, clock.within)
    steps = [_planned(step) for step in clock.escalation] or [PlannedStep(after_seconds=0, notify=tier.escalate_to)]
    name = TEAM_CLOCK + queue
    return {name: due}, {name: steps}


def _planned(step: Any) -> PlannedStep:
    return PlannedStep(
        after_seconds=step.after.total_seconds(),
        notify=step.notify,
        raise_severity=step.raise_severity,
        reassign=step.reassign,
        page=step.page,
        pay=PlannedPayout(**step.pay.model_dump()) if step.pay else None,
    )


def _chains_for(rule_set: RuleSet, severity: Severity) -> dict[str, list[PlannedStep]]:
    tier = rule_set.document.tiers[severity]
    chains: dict[str, list[PlannedStep]] = {}
    for name in deadline_names(rule_set, severity):
        steps = tier.escalation.get(name)
        if steps is None:
            chains[name] = [PlannedStep(after_seconds=0, notify=tier.escalate_to)]
        else:
            chains[name] = [_planned(s) for s in steps]
    return chains
