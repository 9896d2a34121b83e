"""Shared state: what every worker, codec server, console and CLI of one deployment must see alike.

Temporal keeps the cases; a few things of ours live beside them and must be the same on
every host, or a case whose next task lands on another host cannot go on:

- **subject keys**: one key per case, wrapped by the deployment key (redress/codec.py); erasing
  a customer deletes them, and no host may go on opening what was erased;
- **published rule versions**: content-addressed and immutable, so a case pinned to a version
  continues on a host that never saw those files (activities/rules/store.py);
- **codec tokens**: their hashes, so a token issued or revoked counts on every codec server;
- **key-ring metadata**: which deployment key encrypts, and a fingerprint of each, so a host
  with another codec.json is refused at start instead of writing what others cannot read.

Two implementations of one small interface, chosen by `REDRESS_STATE_URL`:

- `LocalState` (unset, the default of `make run`): files beside the keys, as before
  (`keys/subjects.sqlite`, `keys/codec-tokens.json`; the rule versions are the rule store's own
  folder, `data/rule-versions/`). Right for one host, or several sharing one folder.
- `PostgresState` (`REDRESS_STATE_URL=postgresql://...`, redress/state_postgres.py): any number
  of workers on any number of hosts.

The deployment keys themselves (codec.json) are never in the store: a database dump must not
be enough to read the cases (README, "Several workers on several hosts": putting them in a KMS).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STATE_URL = "REDRESS_STATE_URL"


class StateProblem(Exception):
    """The shared state cannot be used as it is; the message says what to do."""


class StateUnavailable(StateProblem):
    """The shared store did not answer: nothing is decided without it, and the caller tries again."""


@dataclass(frozen=True)
class SubjectRow:
    """A case's key as stored: wrapped by the deployment key `wrapping_key`, or erased (both None)."""

    wrapping_key: str | None
    wrapped: bytes | None
    erased_at: str | None


def content_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """The SHA-256 of a rule version's files, names included; its first 12 digits name the version."""
    digest = hashlib.sha256()
    for name, content in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def fingerprint(key: bytes) -> str:
    """A deployment key's fingerprint: tells two hosts' keys apart without revealing either."""
    return hmac.new(key, b"redress deployment key fingerprint v1", hashlib.sha256).hexdigest()[:32]


class SharedState(ABC):
    """The operations the codec, the codec server and the rule store need from the deployment's state.

    No method caches what an erasure removes: a subject key is read from the store for every
    codec call, so an erasure counts on every host at once.
    """

    shared: bool = False  # True: several hosts see it (the rule store publishes there too)

    # ---------------------------------------------------------------- subject keys

    @abstractmethod
    def subject_row(self, subject: str) -> SubjectRow | None:
        """The case's key row, or None if the case has none yet."""

    @abstractmethod
    def add_subject(self, subject: str, wrapping_key: str, wrapped: bytes) -> None:
        """Store a new case key unless one exists (the first writer wins; callers read it back)."""

    @abstractmethod
    def replace_subject(self, subject: str, wrapping_key: str, wrapped: bytes, replacing: bytes) -> bool:
        """Put a new key in the case's row (a key generation: redress/codec.py) if it still holds `replacing`
        (not erased, and no other rekey came first); whether it did."""

    @abstractmethod
    def erase_subject(self, subject: str) -> None:
        """Delete the case's key for good; the row stays so decoding says 'erased' rather than 'unknown'."""

    @abstractmethod
    def after_erasure(self) -> list[str]:
        """Make erased keys unrecoverable from the store's own files as far as it can; say what remains."""

    # ---------------------------------------------------------------- codec tokens

    @abstractmethod
    def token_digests(self) -> dict[str, str]:
        """Codec-token hashes by person, read afresh on every call (issuing or revoking needs no restart)."""

    def token_digest(self, token: str) -> str:
        """What is stored of a token: its SHA-256 locally (the file sits beside the keys anyway)."""
        return hashlib.sha256(token.encode()).hexdigest()

    @abstractmethod
    def put_token(self, name: str, digest: str) -> None: ...

    @abstractmethod
    def drop_token(self, name: str) -> bool: ...

    # ---------------------------------------------------------------- deployment key ring

    def knows_ring(self) -> bool:
        """Whether the deployment's keys were recorded already (then a host must not make its own)."""
        return False

    def reconcile_ring(self, fingerprints: Mapping[str, str], current: str) -> str:
        """Check this host's ring against the deployment's; return the key id that encrypts.

        `fingerprints`: this host's key ids and fingerprints (and "pseudonym" for the pseudonym
        key). Locally the ring file is all there is: its own `current` encrypts.
        """
        return current

    def activate_key(self, key_id: str, fingerprint: str, force: bool = False) -> None:
        raise StateProblem("the local store has no deployment-wide current key: `redress keys rotate` switches it")

    def trust_ring(self, secret: bytes) -> None:  # noqa: B027 (locally: the files sit beside the keys)
        """Derive from the deployment ring the keys that make the store's own records unforgeable.

        With a shared state, write access to the database must not be enough to choose the
        rules (and so the approver directory) every worker follows, nor to issue a codec
        token: rule publications are sealed and token digests keyed with keys derived from
        `secret` (the ring's pseudonym key: stable across rotations, the same on every host).
        """

    # ---------------------------------------------------------------- rule versions

    def publish_rules(  # noqa: B027 (locally: nothing to do)
        self, version: str, files: Mapping[str, bytes], newest: bool
    ) -> None:
        """Keep a valid version where every host can load it (immutable once written).

        It becomes the deployment's newest when it was never published, or when `newest`.

        Locally the rule store's own folder (data/rule-versions/) is where versions are kept.
        """

    def rule_files(self, version: str) -> dict[str, bytes] | None:
        """A published version's files by name, or None when the store does not have it."""
        return None

    def newest_rules(self) -> str | None:
        """The deployment's newest publication: what new complaints are triaged by, on every host."""
        return None


# ---------------------------------------------------------------- the local store


class LocalState(SharedState):
    """Files in the keys folder: one host, or several sharing that folder."""

    def __init__(self, keys: Path, subjects_path: Path | None = None):
        self.keys = Path(keys)
        self.subjects_path = subjects_path or self.keys / "subjects.sqlite"
        self.tokens_path = self.keys / "codec-tokens.json"
        self._local = threading.local()
        self._made = False

    # SQLite so that the worker, the CLI and the codec server on one host share it safely

    def _subjects(self) -> sqlite3.Connection:
        if not self._made:
            self.subjects_path.parent.mkdir(parents=True, exist_ok=True)
            # owner-only before SQLite opens it: SQLite gives its -wal and -shm files the database's mode. Made
            # only if missing: closing any descriptor of a file drops every POSIX lock this process holds on it,
            # SQLite's included, and another process would then take our connections' shared memory for its own
            # and reset it under them (SIGBUS; seen once in the fault test, a restarted worker beside the tests)
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.subjects_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.subjects_path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA secure_delete=ON")  # a deleted key's bytes are overwritten, not left in free pages
            self._local.db = db
        if not self._made:
            db.execute("""CREATE TABLE IF NOT EXISTS subject_keys (
                subject TEXT PRIMARY KEY, wrapping_key TEXT, wrapped BLOB,
                created_at TEXT NOT NULL, erased_at TEXT)""")
            for companion in self.subject_files():
                owner_only(companion)
            self._made = True
        return db

    def subject_files(self) -> list[Path]:
        """The database and the companions SQLite keeps beside it."""
        path = self.subjects_path
        return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]

    def subject_row(self, subject: str) -> SubjectRow | None:
        row = (
            self._subjects()
            .execute("SELECT wrapping_key, wrapped, erased_at FROM subject_keys WHERE subject = ?", (subject,))
            .fetchone()
        )
        return SubjectRow(*row) if row else None

    def add_subject(self, subject: str, wrapping_key: str, wrapped: bytes) -> None:
        self._subjects().execute(
            "INSERT OR IGNORE INTO subject_keys (subject, wrapping_key, wrapped, created_at) VALUES (?, ?, ?, ?)",
            (subject, wrapping_key, wrapped, now()),
        )

    def replace_subject(self, subject: str, wrapping_key: str, wrapped: bytes, replacing: bytes) -> bool:
        changed = self._subjects().execute(
            "UPDATE subject_keys SET wrapping_key = ?, wrapped = ? "
            "WHERE subject = ? AND erased_at IS NULL AND wrapped = ?",
            (wrapping_key, wrapped, subject, replacing),
        )
        return changed.rowcount == 1

    def erase_subject(self, subject: str) -> None:
        self._subjects().execute(
            "INSERT INTO subject_keys (subject, created_at, erased_at) VALUES (?, ?, ?) "
            "ON CONFLICT(subject) DO UPDATE SET wrapped = NULL, wrapping_key = NULL, "
            "erased_at = COALESCE(erased_at, excluded.erased_at)",
            (subject, now(), now()),
        )

    def after_erasure(self, attempts: int = 50) -> list[str]:
        """Copy the write-ahead log into the database and empty it (waits out readers in other processes).

        With secure_delete the old bytes are overwritten in the page SQLite writes next; the
        write-ahead log still holds the page as it was until a checkpoint copies the new one
        over it: afterwards no file under keys/ holds the wrapped key (tests/test_encryption.py).
        """
        db = self._subjects()
        for _ in range(attempts):
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return ["copies of keys/ in backups keep the erased keys until those backups expire"]
            time.sleep(0.1)
        raise StateProblem(
            f"{self.subjects_path}: the write-ahead log could not be truncated (a process holds a read "
            "transaction); the erased keys' old pages stay in it until the next checkpoint"
        )

    def _tokens(self) -> dict[str, str]:
        path = self.tokens_path
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def token_digests(self) -> dict[str, str]:
        return self._tokens()

    def put_token(self, name: str, digest: str) -> None:
        tokens = self._tokens()
        tokens[name] = digest
        self.keys.mkdir(parents=True, exist_ok=True)
        write_private(self.tokens_path, json.dumps(tokens, indent=2))

    def drop_token(self, name: str) -> bool:
        tokens = self._tokens()
        if tokens.pop(name, None) is None:
            return False
        write_private(self.tokens_path, json.dumps(tokens, indent=2))
        return True


# ---------------------------------------------------------------- choosing one


def state_url() -> str | None:
    return os.environ.get(STATE_URL) or None


def open_state(keys: Path) -> SharedState:
    """The deployment's state: PostgreSQL when REDRESS_STATE_URL is set, else the files beside `keys`.

    One PostgreSQL store per process and URL (one connection pool), however many converters use it.
    """
    url = state_url()
    if url is None:
        return LocalState(keys)
    from redress.state_postgres import PostgresState

    return PostgresState.shared_by_process(url)


# ---------------------------------------------------------------- small file helpers


def now() -> str:
    return datetime.now(UTC).isoformat()


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only, atomically."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def owner_only(path: Path) -> None:
    """Make an existing file readable by its owner only (files made before this rule, or by a library).

    A file given read-only (a container's mounted secret) is left as it is when it is already
    private, and refused when others may read it and it cannot be changed.
    """
    if not path.exists() or not path.stat().st_mode & 0o077:
        return
    try:
        os.chmod(path, 0o600)
    except OSError:
        raise StateProblem(f"{path} is readable by others and cannot be made private: chmod 600 it") from None
