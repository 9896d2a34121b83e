"""Warnings about rules that load but are probably not what the admin meant.

- a rule that can never fire: a condition that is constantly false, or that
  compares `channel` / `requested_remedy` with a value the contract does not have;
- a rule shadowed by an earlier one: the earlier fires whenever it does and
  already sets everything it sets (category and queue: the first one wins);
- a keyword listed twice, in one rule, or in two that both set a category or both a queue (a word in a
  category rule and in a severity rule is two separate decisions, not a slip);
- a team clock (`ola:`) for a queue nothing ever sends a case to (a misspelt queue name).
(A tier without deadlines is not a warning but an error: every tier needs them.)
"""

from __future__ import annotations

import re
from typing import Any

from activities.rules.expressions import Activation
from activities.rules.keywords import fold
from activities.rules.schema import RuleSetDocument
from redress.contract import Channel, RemedyKind

Warning = tuple[tuple[str | int, ...], str]
_COMPARED = re.compile(r"\b(channel|requested_remedy)\s*==\s*[\"']([^\"']*)[\"']")
_KNOWN = {"channel": {c.value for c in Channel}, "requested_remedy": {k.value for k in RemedyKind} | {""}}


def lint(doc: RuleSetDocument, conditions: dict[tuple[str, int], Any]) -> list[Warning]:
    warnings: list[Warning] = []
    for section, items in (("rules", doc.rules), ("offers", doc.offers)):
        for index in range(len(items)):
            condition = conditions.get((section, index))
            if condition is None:
                continue
            for variable, value in _COMPARED.findall(condition.source):
                if value not in _KNOWN[variable]:
                    warnings.append(
                        (
                            (section, index, "when"),
                            f"never fires as meant: {variable} is never {value!r} "
                            f"(values: {', '.join(sorted(v for v in _KNOWN[variable] if v))})",
                        )
                    )
            if not condition.program.variables():
                try:
                    constant = condition.evaluate(Activation({}))
                except ValueError:
                    constant = None
                if constant is False:
                    warnings.append(((section, index, "when"), "never fires: the condition is always false"))

    seen: dict[str, list[int]] = {}
    for index, rule in enumerate(doc.rules):
        mine: set[str] = set()
        for position, keyword in enumerate(rule.words):
            folded = fold(keyword)  # as the matcher compares them: case, full width and ligatures aside
            if folded in mine:
                warnings.append((("rules", index, "keywords", position), f"keyword {keyword!r} is listed twice"))
            else:
                clash = next((i for i in seen.get(folded, []) if _decide_alike(doc.rules[i].set, rule.set)), None)
                if clash is not None:
                    where = ("rules", index, "keywords", position)
                    warnings.append((where, f"keyword {keyword!r} is also in rule {doc.rules[clash].name!r}"))
                seen.setdefault(folded, []).append(index)
            mine.add(folded)

    for index, rule in enumerate(doc.rules):
        sets = {field for field in ("category", "queue") if getattr(rule.set, field)}
        if not sets or rule.set.severity or rule.set.tags:
            continue
        for earlier in doc.rules[:index]:
            covers_keywords = not earlier.keywords or (
                rule.keywords and {fold(k) for k in rule.words} <= {fold(k) for k in earlier.words}
            )
            if earlier.when is None and covers_keywords and all(getattr(earlier.set, f) for f in sets):
                warnings.append(
                    (
                        ("rules", index, "name"),
                        f"shadowed by rule {earlier.name!r}: it fires whenever this one does and already "
                        f"sets {', '.join(sorted(sets))}",
                    )
                )
                break
    warnings += _unrouted_team_clocks(doc)
    return warnings


def _unrouted_team_clocks(doc: RuleSetDocument) -> list[Warning]:
    """A team clock (`ola:`) for a queue no rule, default, fallback or reassignment ever sends a case to: a
    misspelt queue name, most likely, and the team's clock would never run."""
    queues = {doc.defaults.queue} | {queue for rule in doc.rules for queue in (rule.set.queue, rule.set.fallback_queue)}
    chains = [steps for tier in doc.tiers.values() for steps in tier.escalation.values()]
    chains += [clock.escalation for clock in doc.ola.values()]
    queues |= {step.reassign for steps in chains for step in steps if step.reassign}
    return [
        (("ola", queue), f"no rule, default or reassignment sends a case to queue {queue!r}: its clock never runs")
        for queue in doc.ola
        if queue not in queues
    ]


def _decide_alike(one: Any, other: Any) -> bool:
    """Whether two rules' effects both set a category, or both a queue (a keyword in both counts twice)."""
    return bool((one.category and other.category) or (one.queue and other.queue))
