"""The rule versions a worker can decide with: the current one, and those loaded earlier in this process.

A case records the version it was triaged under and asks for it by that id
later; the store answers with it while it knows it.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from activities.rules.loader import RuleSet, load_rules

log = structlog.get_logger(__name__)


class RuleStore:
    def __init__(self, directory: Path):
        self.directory = directory
        self.current: RuleSet = load_rules(directory)
        self._versions: dict[str, RuleSet] = {self.current.version: self.current}
        log.info("rules loaded", rule_version=self.current.version, directory=str(directory))
        for warning in self.current.warnings:
            log.warning("rule lint", rule_version=self.current.version, warning=str(warning))

    def get(self, version: str | None) -> RuleSet:
        if version is None:
            return self.current
        found = self._versions.get(version)
        if found is None:
            log.warning("rule version unknown here; deciding with the current one",
                        asked=version, rule_version=self.current.version)
            return self.current
        return found
