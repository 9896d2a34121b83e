"""Rule versions: the current one (hot-reloaded from the rules folder) and every published one.

Why it works across workers: a version is the hash of the files' content, so
two workers that read the same files agree on it without talking to each
other; each checks the folder at most every `check_seconds` before triaging,
so after an edit they disagree for at most that long (plus the time to notice
the new files on a shared mount). A case is pinned to the version it was
triaged under: later decisions (deadlines, approvals, messages) ask for that
version, which is kept in a content-addressed store (data/rule-versions/<hash>)
so it stays loadable after restarts and edits.

A bad edit never takes the engine down: it is refused with every problem
located (file:line:column) and the last good version stays in force.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import structlog

from activities.rules.loader import RuleError, RuleSet, RulesInvalid, load_rules, rule_files

log = structlog.get_logger(__name__)


class RuleStore:
    def __init__(self, directory: Path, store_dir: Path | None = None, check_seconds: float = 2.0):
        self.directory = Path(directory)
        self.store_dir = store_dir
        self.check_seconds = check_seconds
        self.refused: list[RuleError] = []  # the problems of the last edit that was refused, if any
        self.current: RuleSet = self._load_at_start()
        self._versions: dict[str, RuleSet] = {}
        self._remember(self.current)
        self._fingerprint = self._read_fingerprint()
        self._checked_at = time.monotonic()
        log.info("rules loaded", rule_version=self.current.version, directory=str(self.directory))
        self._warn(self.current)

    def _load_at_start(self) -> RuleSet:
        """The folder's rules; if an edit broke them, the newest published version (a restart must not fail)."""
        try:
            return load_rules(self.directory)
        except RulesInvalid as invalid:
            published = (
                sorted(
                    (p for p in self.store_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
                    key=lambda p: p.stat().st_mtime,
                )
                if self.store_dir is not None and self.store_dir.is_dir()
                else []
            )
            if not published:
                raise  # no good version to fall back on: the first start must be fixed by hand
            self.refused = invalid.errors
            log.error(
                "rules folder refused at start; running the last published version",
                rule_version=published[-1].name,
                problems=[str(e) for e in invalid.errors],
            )
            return load_rules(published[-1], check_holiday_data=False)

    def latest(self, fresh: bool = False) -> RuleSet:
        """The version for new complaints, reloading the folder if it changed since the last look.

        The folder is looked at every `check_seconds` at most, or now when `fresh` (the approver
        directory: a revocation must count at once; it costs a stat per rule file).
        """
        now = time.monotonic()
        if now - self._checked_at < self.check_seconds and not fresh:
            return self.current
        self._checked_at = now
        fingerprint = self._read_fingerprint()
        if fingerprint == self._fingerprint:
            return self.current
        self._fingerprint = fingerprint
        try:
            candidate = load_rules(self.directory)
        except RulesInvalid as invalid:
            self.refused = invalid.errors
            log.error(
                "rules edit refused; the last good version stays in force",
                rule_version=self.current.version,
                problems=[str(e) for e in invalid.errors],
            )
            return self.current
        self.refused = []
        if candidate.version != self.current.version:
            previous = self.current.version
            self._remember(candidate)
            self.current = candidate
            log.info("rules reloaded", rule_version=candidate.version, previous=previous)
            self._warn(candidate)
        return self.current

    def get(self, version: str | None) -> RuleSet:
        """A pinned version: from memory, else from the store, else (unknown here) the current one."""
        if version is None:
            return self.current
        found = self._versions.get(version)
        if found is None and self.store_dir is not None and (self.store_dir / version).is_dir():
            # an archived version was valid when published; calendars are not re-judged against today
            found = load_rules(self.store_dir / version, check_holiday_data=False)
            self._versions[version] = found
        if found is None:
            log.warning(
                "rule version unknown here; deciding with the current one",
                asked=version,
                rule_version=self.current.version,
            )
            return self.current
        return found

    def _remember(self, rule_set: RuleSet) -> None:
        self._versions[rule_set.version] = rule_set
        if self.store_dir is None:
            return
        target = self.store_dir / rule_set.version
        if target.exists():
            return
        staging = self.store_dir / f".{rule_set.version}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for path in rule_files(rule_set.directory):
            shutil.copy2(path, staging / path.name)
        staging.rename(target)  # atomic: a version directory is complete or absent

    def _read_fingerprint(self) -> tuple:
        try:
            stats = [(path.name, path.stat()) for path in rule_files(self.directory)]
        except OSError:
            return ()
        return tuple((name, stat.st_mtime_ns, stat.st_size) for name, stat in stats)

    @staticmethod
    def _warn(rule_set: RuleSet) -> None:
        for warning in rule_set.warnings:
            log.warning("rule lint", rule_version=rule_set.version, warning=str(warning))
