"""Rule versions: the current one (hot-reloaded from the rules folder) and every published one.

Why it works across workers: a version is the hash of the files' content, so
two workers that read the same files agree on it without talking to each
other; each checks the folder at most every `check_seconds` before triaging,
so after an edit they disagree for at most that long (plus the time to notice
the new files on a shared mount). A case is pinned to the version it was
triaged under: later decisions (deadlines, approvals, messages) ask for that
version, which is kept in a content-addressed store (data/rule-versions/<hash>)
so it stays loadable after restarts and edits.

With a shared state (REDRESS_STATE_URL, redress/state.py) every valid version is also
published there, and a version this host never saw is fetched from it, checked against its
hash and kept in the local folder (a version is immutable, so a local copy is always right):
a case continues on any host, even one that never had those files. New complaints are then
triaged by the deployment's newest publication, whichever host saw the edit: an edit (a
revert too) seen by a running worker is published as the newest; a worker starting publishes
its folder only if that version is new, so a host restarted with stale files follows the
deployment instead of rolling it back.

A bad edit never takes the engine down: it is refused with every problem
located (file:line:column) and the last good version stays in force.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

import structlog

from activities.rules.loader import RuleError, RuleSet, RulesInvalid, load_rules, rule_files, version_of
from redress.state import SharedState, StateUnavailable

log = structlog.get_logger(__name__)


class RuleStore:
    def __init__(
        self,
        directory: Path,
        store_dir: Path | None = None,
        check_seconds: float = 2.0,
        shared: SharedState | None = None,
    ):
        self.directory = Path(directory)
        self.store_dir = store_dir
        self.shared = shared if shared is not None and shared.shared else None
        self.check_seconds = check_seconds
        self.refused: list[RuleError] = []  # the problems of the last edit that was refused, if any
        self._looking = threading.Lock()
        self.current: RuleSet = self._load_at_start()
        self._versions: dict[str, RuleSet] = {}
        self._remember(self.current, newest=False)  # a restart with old files does not roll the deployment back
        self._fingerprint = self._read_fingerprint()
        self._checked_at = time.monotonic()
        log.info("rules loaded", rule_version=self.current.version, directory=str(self.directory))
        self._warn(self.current)
        self._follow_deployment()

    def _load_at_start(self) -> RuleSet:
        """The folder's rules; if an edit broke them, the newest published version (a restart must not fail)."""
        try:
            return load_rules(self.directory)
        except RulesInvalid as invalid:
            newest = self._newest_published()
            if newest is None:
                raise  # no good version to fall back on: the first start must be fixed by hand
            self.refused = invalid.errors
            log.error(
                "rules folder refused at start; running the last published version",
                rule_version=newest.name,
                problems=[str(e) for e in invalid.errors],
            )
            return load_rules(newest, check_holiday_data=False)

    def _newest_published(self) -> Path | None:
        """The folder of the version published last: the deployment's (shared state), else this host's."""
        if self.shared is not None and self.store_dir is not None:
            version = self.shared.newest_rules()
            if version is not None and self._fetch(version):
                return self._local(version)
        if self.store_dir is None or not self.store_dir.is_dir():
            return None
        published = sorted(
            (p for p in self.store_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime,
        )
        return published[-1] if published else None

    def latest(self, fresh: bool = False) -> RuleSet:
        """The version for new complaints, reloading the folder if it changed since the last look.

        The folder is looked at every `check_seconds` at most, or now when `fresh` (the approver
        directory: a revocation must count at once; it costs a stat per rule file).
        """
        now = time.monotonic()
        if now - self._checked_at < self.check_seconds and not fresh:
            return self.current
        with self._looking:  # the worker's watch and the activities look from different threads
            self._checked_at = now
            self._reload_folder()
            self._follow_deployment()
        return self.current

    def _reload_folder(self) -> None:
        """This host's folder: a valid edit becomes current here, and the deployment's newest if shared."""
        fingerprint = self._read_fingerprint()
        if fingerprint == self._fingerprint:
            return
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
            return
        self.refused = []
        if candidate.version != self.current.version:
            previous = self.current.version
            self._remember(candidate, newest=True)  # an edit seen here, a revert included
            self.current = candidate
            log.info("rules reloaded", rule_version=candidate.version, previous=previous)
            self._warn(candidate)

    def _follow_deployment(self) -> None:
        """With a shared state, new complaints are triaged by the deployment's newest version, wherever edited."""
        if self.shared is None or self.store_dir is None:
            return
        newest = self.shared.newest_rules()
        if newest is None or newest == self.current.version or not self._fetch(newest):
            return
        found = self._versions.get(newest)
        if found is None:
            found = self._versions[newest] = load_rules(self._local(newest), check_holiday_data=False)
        previous, self.current = self.current.version, found
        log.info("rules follow the deployment's newest version", rule_version=newest, previous=previous)

    def get(self, version: str | None) -> RuleSet:
        """A pinned version: from memory, else from the store, else (unknown here) the current one."""
        if version is None:
            return self.current
        found = self._versions.get(version)
        if found is None and self.store_dir is not None and self._fetch(version):
            # an archived version was valid when published; calendars are not re-judged against today
            found = load_rules(self._local(version), check_holiday_data=False)
            self._versions[version] = found
        if found is None and self.shared is not None:
            # every version a case was triaged under was published: deciding its money with other rules is
            # worse than waiting (the activity is retried) while an operator looks
            log.error("a case's rule version is not in the shared state", asked=version)
            raise StateUnavailable(f"rule version {version[:40]!r} is not in the shared state (nor here)")
        if found is None:
            log.warning(
                "rule version unknown here; deciding with the current one",
                asked=version,
                rule_version=self.current.version,
            )
            return self.current
        return found

    def _local(self, version: str) -> Path:
        assert self.store_dir is not None
        return self.store_dir / version

    def _remember(self, rule_set: RuleSet, newest: bool) -> None:
        """Keep a valid version: in memory, in the local folder, and in the shared state if there is one.

        `newest`: make it the deployment's newest even if it was published before (an edit seen
        here); otherwise only a version never published becomes the newest (a host's start).
        """
        self._versions[rule_set.version] = rule_set
        if self.store_dir is None:
            return
        files = {path.name: path.read_bytes() for path in rule_files(rule_set.directory)}
        self._write_local(rule_set.version, files)
        if self.shared is not None:
            self.shared.publish_rules(rule_set.version, files, newest=newest)

    def _fetch(self, version: str) -> bool:
        """Whether the version is in the local folder, copied there from the shared state if need be."""
        if self._local(version).is_dir():
            return True
        files = self.shared.rule_files(version) if self.shared is not None else None
        if not files:
            return False
        if version_of(list(files.items())) != version:
            log.error("a published rule version does not match its hash; not used", asked=version)
            return False
        self._write_local(version, files)
        return True

    def _write_local(self, version: str, files: dict[str, bytes]) -> None:
        target = self._local(version)
        if target.exists():
            return
        assert self.store_dir is not None
        staging = self.store_dir / f".{version}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name, content in files.items():
            (staging / Path(name).name).write_bytes(content)
        try:
            staging.rename(target)  # atomic: a version directory is complete or absent
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process wrote the same version meanwhile

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


VERSION_NAME = re.compile(r"[0-9a-f]{8,64}")


def read_published(version: str, store_dir: Path, shared: SharedState | None = None) -> RuleSet | None:
    """A published version for a tool that only reads (the rules lab): from the folder, else the shared state.

    Unlike RuleStore it never publishes, writes or follows anything: a lab run on an admin's
    laptop with edited files must not become the deployment's rules. None when not found (or
    when the shared copy does not match its hash).
    """
    if not VERSION_NAME.fullmatch(version):
        return None
    local = store_dir / version
    if local.is_dir():
        found = load_rules(local, check_holiday_data=False)
        return found if found.version == version else None  # a folder changed since it was kept is not that version
    files = shared.rule_files(version) if shared is not None and shared.shared else None
    if not files or version_of(list(files.items())) != version:
        return None
    with tempfile.TemporaryDirectory(prefix="redress-rules-") as folder:
        for name, content in files.items():
            (Path(folder) / Path(name).name).write_bytes(content)
        return load_rules(Path(folder), check_holiday_data=False)
