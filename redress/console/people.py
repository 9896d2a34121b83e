"""The console's view of the approver directory: who may sign in, their passkeys, queues and limits.

Read from the same rules folder the workers read (newest valid version, re-read
when a file changes), so a passkey registered or revoked there counts here at
once. This is for showing and for signing people in; what a decision is worth is
decided by the workflow against the live directory, never by the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from activities.rules.approvals import passkeys as passkeys_of
from activities.rules.loader import RuleSet
from activities.rules.schema import RelyingParty
from activities.rules.store import RuleStore
from redress.contract import RemedyKind


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    passkeys: dict[str, str]  # credential id -> COSE public key (base64url), revoked ones left out
    queues: tuple[str, ...]  # the queues whose roster lists them (rules: agent_load.agents)


class Directory:
    def __init__(self, rules: Path) -> None:
        self.store = RuleStore(Path(rules), store_dir=None, check_seconds=1.0)

    @property
    def rules(self) -> RuleSet:
        return self.store.latest(fresh=True)

    @property
    def relying_party(self) -> RelyingParty | None:
        return self.rules.document.relying_party

    def people(self) -> list[Person]:
        document = self.rules.document
        rosters = document.agent_load.agents if document.agent_load else {}
        return [
            Person(
                name=name,
                role=entry.role,
                passkeys=passkeys_of(document, name),
                queues=tuple(sorted(queue for queue, agents in rosters.items() if name in agents)),
            )
            for name, entry in sorted(document.approvers.items())
        ]

    def person(self, name: str | None) -> Person | None:
        return next((p for p in self.people() if p.name == name), None)

    def who_holds(self, credential_id: str) -> Person | None:
        return next((p for p in self.people() if credential_id in p.passkeys), None)

    def needs_signature(self, kind: RemedyKind, amount: Decimal, currency: str) -> bool:
        """Whether a proposal of this size moves money beyond the automatic limit (then the console signs it).

        By the newest rules: a case pinned to older ones may judge differently, and the workflow's
        answer is what counts (an unsigned proposal there simply awaits an approver).
        """
        approval = self.rules.document.approval
        if kind in approval.free_kinds:
            return False
        auto = approval.auto_approve.get(currency)
        return auto is None or amount <= 0 or amount > auto
