"""Rule unit tests written by admins, beside the rules: rules/tests/*.yaml.

Each file holds cases: an example complaint and the triage outcome expected
for it. Only the fields written under `expect` are compared, so a test says
exactly what it cares about. Like promtool's rule tests or `opa test`, they run
without a server: `redress rules test` (and `make test`).

    cases:
      - name: charged twice, in Chinese, is billing
        complaint: {text: "重复扣费了，我要退款", channel: app}
        expect: {category: billing, queue: billing, severity: general, fired: [billing-error]}
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from activities.io import TriageFacts
from activities.rules.engine import triage
from activities.rules.loader import RuleSet
from redress.contract import ComplaintInput, describe_validation_error

# Fields an example complaint may leave out: tests are about rules, not about contact details.
EXAMPLE_DEFAULTS: dict[str, Any] = {
    "complaint_id": "RULE-TEST",
    "customer": {"id": "rule-test", "language": "en"},
    "channel": "web",
    "received_at": datetime(2026, 1, 5, 9, 0, tzinfo=UTC).isoformat(),
}


class Expectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    category: str | None = None
    queue: str | None = None
    severity: str | None = None
    fired: list[str] | None = Field(default=None, description="Rules that must fire (others may fire too).")
    not_fired: list[str] | None = None
    offers: list[str] | None = Field(default=None, description="Remedy kinds offered, in order.")


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    complaint: dict[str, Any]
    expect: Expectation


class CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cases: list[Case]


@dataclass
class Outcome:
    file: str
    name: str
    differences: list[str]  # empty: passed

    @property
    def passed(self) -> bool:
        return not self.differences


def run_admin_tests(rule_set: RuleSet, directory: Path | None = None) -> list[Outcome]:
    directory = directory or rule_set.directory / "tests"
    outcomes: list[Outcome] = []
    for path in sorted(directory.glob("*.y*ml")) if directory.is_dir() else []:
        try:
            cases = CaseFile.model_validate(YAML(typ="safe").load(path.read_text(encoding="utf-8"))).cases
        except (MarkedYAMLError, ValidationError) as error:
            outcomes.append(Outcome(str(path), "(file)", [f"cannot read the test file: {error}"]))
            continue
        for case in cases:
            outcomes.append(Outcome(str(path), case.name, _differences(rule_set, case)))
    return outcomes


def _differences(rule_set: RuleSet, case: Case) -> list[str]:
    try:
        complaint = ComplaintInput.model_validate({**EXAMPLE_DEFAULTS, **case.complaint})
    except ValidationError as invalid:
        return ["the example complaint is invalid: " + "; ".join(describe_validation_error(invalid))]
    result = triage(rule_set, TriageFacts.of(complaint))
    actual = {
        "category": result.category,
        "queue": result.queue,
        "severity": result.severity.value,
        "offers": [offer.kind.value for offer in result.offers],
    }
    fired = set(result.fired)
    differences = []
    for field in ("category", "queue", "severity", "offers"):
        wanted = getattr(case.expect, field)
        if wanted is not None and wanted != actual[field]:
            differences.append(f"{field}: expected {wanted!r}, got {actual[field]!r}")
    for rule in case.expect.fired or []:
        if rule not in fired:
            reason = next((r.reason for r in result.rules if r.rule == rule), "no such rule")
            differences.append(f"fired: expected {rule!r} to fire; it did not ({reason})")
    for rule in case.expect.not_fired or []:
        if rule in fired:
            reason = next(r.reason for r in result.rules if r.rule == rule)
            differences.append(f"not_fired: expected {rule!r} not to fire; it did ({reason})")
    return differences
