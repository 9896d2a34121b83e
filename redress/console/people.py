"""The console's view of the approver directory: who may sign in, their passkeys, queues and limits.

Read from the same rules folder the workers read (newest valid version, re-read
when a file changes), so a passkey registered or revoked there counts here at
once; with a shared state (REDRESS_STATE_URL) it follows the deployment's newest
published version as the workers do, so an edit made on another host counts here
too. This is for showing and for signing people in; what a decision is worth is
decided by the workflow against the live directory, never by the console.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from activities.rules.approvals import passkeys as passkeys_of
from activities.rules.loader import RuleSet
from activities.rules.schema import RelyingParty
from activities.rules.store import RuleStore
from redress.codec import deployment_ring, keys_dir
from redress.state import open_state


@dataclass(frozen=True)
class Person:
    name: str
    role: str
    passkeys: dict[str, str]  # credential id -> COSE public key (base64url), revoked ones left out
    queues: tuple[str, ...]  # the queues whose roster lists them (rules: agent_load.agents)


class Directory:
    def __init__(self, rules: Path) -> None:
        shared = open_state(keys_dir())
        cache = None
        if shared.shared:
            deployment_ring(keys_dir(), shared)  # checks this host's ring; rule publications are sealed with it
            # the versions it fetches from the shared state are kept in a folder of its own (a cache: immutable)
            cache = Path(tempfile.mkdtemp(prefix="redress-console-rules-"))
        self.store = RuleStore(Path(rules), store_dir=cache, check_seconds=1.0, shared=shared)
        self._known: tuple[str, dict[str, Person]] | None = None

    @property
    def rules(self) -> RuleSet:
        return self.store.latest(fresh=True)

    @property
    def relying_party(self) -> RelyingParty | None:
        return self.rules.document.relying_party

    def people(self) -> list[Person]:
        return list(self._by_name().values())

    def person(self, name: str | None) -> Person | None:
        return self._by_name().get(name or "")

    def _by_name(self) -> dict[str, Person]:
        """Everyone, worked out once per rule version: every request asks (its session is re-checked)."""
        rules = self.rules
        if self._known is None or self._known[0] != rules.version:
            document = rules.document
            rosters = document.agent_load.agents if document.agent_load else {}
            people = {
                name: Person(
                    name=name,
                    role=entry.role,
                    passkeys=passkeys_of(document, name),
                    queues=tuple(sorted(queue for queue, agents in rosters.items() if name in agents)),
                )
                for name, entry in sorted(document.approvers.items())
            }
            self._known = (rules.version, people)
        return self._known[1]
