"""Payload encryption: personal data reaches the Temporal server only as AES-GCM ciphertext.

Two kinds of key, both 256-bit AES-GCM:

- **Deployment keys** (`keys/codec.json`): a key ring with one `current` key that
  encrypts and any number of older ones that still decrypt, so rotation never
  makes an old payload unreadable. Each payload names its key id.
- **Subject keys** (`keys/subjects.sqlite`): one random key per complaint case,
  stored wrapped by a deployment key. Every payload of a complaint workflow and
  its activities is sealed with it, so deleting it (crypto-shredding) erases the
  case's personal data wherever Temporal keeps a copy: history, archives, backups.

The one exception is the `Outcome` a case returns: it is anonymous by
construction (no names, contacts or free text; see redress/contract.py) and is
marked so by the payload converter, so it stays under a deployment key and
reports can still count an erased case.

Every payload is **bound to its workflow**: the workflow id is the AES-GCM
associated data (and named in the metadata), so a payload copied from one case
into a message to another does not open there. Inside a workflow (the worker's
decoding, which has the SDK's serialization context) the codec refuses:
plaintext, ciphertext bound to another workflow or to none, and ciphertext that
fails authentication. It does not raise for them (that would fail the workflow
task for good): it hands over a marked payload that the converter turns into
`redress.contract.Undecodable`, which the message handlers refuse with its
reason. `REDRESS_ACCEPT_PLAIN_PAYLOADS=1` accepts plaintext and unbound payloads
from clients written before binding (docs/security.md). Plain-JSON clients
encrypt through the codec server, bound to their workflow
(`--codec-endpoint http://host:8081/bind/<workflow id>`).

Customer ids reach visibility and workflow ids only as keyed pseudonyms
(`KeyRing.pseudonym`, HMAC-SHA-256 under a key kept in codec.json), unless
`REDRESS_CUSTOMER_IDS_ARE_PSEUDONYMS=1` says the ids are pseudonyms already.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from redress.contract import WORKFLOW_ID_PREFIX, Outcome, Undecodable

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
SUBJECT = "encryption-subject"
BOUND = "encryption-bound-to"  # the workflow id this payload belongs to (the associated data)
CLASS = "redress-class"
FIGURES = b"figures"  # anonymous by construction: never under a subject key
UNDECODABLE = "redress-undecodable"  # set by the codec on a payload it refused to open (the reason)
MISSING_KEY = "redress-missing-key"
NONCE_BYTES = 12
PLAIN_SWITCH = "REDRESS_ACCEPT_PLAIN_PAYLOADS"
PSEUDONYM_SWITCH = "REDRESS_CUSTOMER_IDS_ARE_PSEUDONYMS"

DEFAULT_KEYS_DIR = Path("keys")


class KeyProblem(Exception):
    """Base of key problems; the message says what to do."""


class MissingKeys(KeyProblem):
    pass


class UnknownKey(KeyProblem):
    pass


class PersonalDataErased(KeyProblem):
    """The subject's key was deleted on purpose: its personal data is gone for good."""

    def __init__(self, subject: str, erased_at: str):
        self.subject = subject
        super().__init__(f"the personal data of {subject} was erased at {erased_at}")


def keys_dir() -> Path:
    return Path(os.environ.get("REDRESS_PAYLOAD_KEYS") or DEFAULT_KEYS_DIR)


def write_private(path: Path, text: str) -> None:
    """Write a secret file readable by its owner only, atomically."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def owner_only(path: Path) -> None:
    """Make an existing file readable by its owner only (files made before this rule, or by a library)."""
    if path.exists():
        os.chmod(path, 0o600)


# ---------------------------------------------------------------- deployment keys


@dataclasses.dataclass(frozen=True)
class KeyRing:
    """Deployment keys by id; `current` encrypts, all decrypt. Also the stable key of customer pseudonyms."""

    current: str
    keys: dict[str, bytes]
    pseudonym_key: bytes = b""

    def pseudonym(self, customer_id: str) -> str:
        """The customer as visibility and workflow ids show them: `p-` and 32 hex digits of an HMAC.

        Stable for the life of the deployment (the key survives rotation), so a customer's
        cases and record stay linked; unreadable without codec.json. With
        REDRESS_CUSTOMER_IDS_ARE_PSEUDONYMS=1 the id is used as it is.
        """
        if os.environ.get(PSEUDONYM_SWITCH) == "1":
            return customer_id
        if not self.pseudonym_key:
            raise MissingKeys("codec.json has no pseudonym_key: run `redress keys rotate` once to add one")
        digest = hmac.new(self.pseudonym_key, customer_id.encode(), hashlib.sha256).hexdigest()
        return f"p-{digest[:32]}"

    @staticmethod
    def path(directory: Path) -> Path:
        return directory / "codec.json"

    @classmethod
    def load(cls, directory: Path, create: bool = False) -> KeyRing:
        path = cls.path(directory)
        if not path.exists():
            if not create:
                raise MissingKeys(
                    f"no payload keys at {path}: run `redress keys rotate` once, "
                    "or copy codec.json from another worker of this deployment"
                )
            return cls.rotate(directory, first=True)
        owner_only(path)
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = {key_id: base64.b64decode(value) for key_id, value in data["keys"].items()}
        if data["current"] not in keys or any(len(k) != 32 for k in keys.values()):
            raise MissingKeys(f"{path}: `current` must name one of `keys`, each 32 bytes in base64")
        return cls(current=data["current"], keys=keys, pseudonym_key=base64.b64decode(data.get("pseudonym_key", "")))

    @classmethod
    def rotate(cls, directory: Path, first: bool = False) -> KeyRing:
        """Add a new key and make it current; the old ones stay so old payloads still decrypt.

        `first`: only if there is no ring yet. Two processes starting at once (the worker and
        a CLI) must not each make their own: the loser of the race loads the winner's ring.
        """
        directory.mkdir(parents=True, exist_ok=True)
        path = cls.path(directory)
        before = None if first or not path.exists() else cls.load(directory)
        existing = before.keys if before else {}
        pseudonym_key = (before.pseudonym_key if before else b"") or secrets.token_bytes(32)
        key_id = f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
        keys = {**existing, key_id: AESGCM.generate_key(bit_length=256)}
        text = json.dumps(
            {
                "current": key_id,
                "keys": {k: base64.b64encode(v).decode() for k, v in keys.items()},
                "pseudonym_key": base64.b64encode(pseudonym_key).decode(),
            },
            indent=2,
        )
        if not first:
            write_private(path, text)
            return cls(current=key_id, keys=keys, pseudonym_key=pseudonym_key)
        staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        write_private(staged, text)
        try:
            os.link(staged, path)  # atomic, and fails if a ring appeared meanwhile
        except FileExistsError:
            return cls.load(directory)
        finally:
            staged.unlink()
        return cls(current=key_id, keys=keys, pseudonym_key=pseudonym_key)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKey(
                f"payload key {key_id!r} is not in this key ring; "
                "a key was removed before every payload under it expired"
            ) from None


# ---------------------------------------------------------------- subject keys


class SubjectKeys:
    """One key per complaint case, wrapped by a deployment key; deleting it erases the case's personal data.

    SQLite so that the worker, the CLI and the codec server on one host share it
    safely. A deployment with workers on several hosts puts the same three
    operations (key_for, erase, erased) in front of a shared store or a KMS.
    """

    def __init__(self, path: Path, ring: KeyRing):
        self.path = path
        self.ring = ring
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        # made owner-only before SQLite opens it: SQLite gives its -wal and -shm files the database's mode
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        with self._connect() as db:
            db.execute("""CREATE TABLE IF NOT EXISTS subject_keys (
                subject TEXT PRIMARY KEY, wrapping_key TEXT, wrapped BLOB,
                created_at TEXT NOT NULL, erased_at TEXT)""")
        for companion in self.files():
            owner_only(companion)

    def files(self) -> list[Path]:
        """The database and the companions SQLite keeps beside it."""
        return [self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")]

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA secure_delete=ON")  # a deleted key's bytes are overwritten, not left in free pages
            self._local.db = db
        return db

    def key_for(self, subject: str, create: bool) -> bytes | None:
        """The subject's key (made on first use when `create`); PersonalDataErased once erased."""
        db = self._connect()
        row = db.execute(
            "SELECT wrapping_key, wrapped, erased_at FROM subject_keys WHERE subject = ?", (subject,)
        ).fetchone()
        if row is None:
            if not create:
                return None
            fresh = AESGCM.generate_key(bit_length=256)
            nonce = os.urandom(NONCE_BYTES)
            wrapped = nonce + AESGCM(self.ring.key(self.ring.current)).encrypt(nonce, fresh, subject.encode())
            db.execute(
                "INSERT OR IGNORE INTO subject_keys (subject, wrapping_key, wrapped, created_at) VALUES (?, ?, ?, ?)",
                (subject, self.ring.current, wrapped, _now()),
            )
            return self.key_for(subject, create=False)  # another process may have won the race
        wrapping_key, wrapped, erased_at = row
        if erased_at is not None:
            raise PersonalDataErased(subject, erased_at)
        return AESGCM(self.ring.key(wrapping_key)).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], subject.encode()
        )

    def erase(self, subject: str) -> None:
        """Delete the key for good (the row stays, so decoding says 'erased' rather than 'unknown').

        With secure_delete the old bytes are overwritten in the page SQLite writes next; the
        write-ahead log still holds the page as it was until a checkpoint copies the new one
        over it, so the log is checkpointed and truncated here: afterwards no file under
        keys/ holds the wrapped key (tests/test_encryption.py reads them all).
        """
        db = self._connect()
        db.execute(
            "INSERT INTO subject_keys (subject, created_at, erased_at) VALUES (?, ?, ?) "
            "ON CONFLICT(subject) DO UPDATE SET wrapped = NULL, wrapping_key = NULL, "
            "erased_at = COALESCE(erased_at, excluded.erased_at)",
            (subject, _now(), _now()),
        )
        self.checkpoint()

    def checkpoint(self, attempts: int = 50) -> None:
        """Copy the write-ahead log into the database and empty it (waits out readers in other processes)."""
        db = self._connect()
        for _ in range(attempts):
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.1)
        raise KeyProblem(
            f"{self.path}: the write-ahead log could not be truncated (a process holds a read "
            "transaction); the erased keys' old pages stay in it until the next checkpoint"
        )

    def erased(self, subject: str) -> bool:
        row = self._connect().execute("SELECT erased_at FROM subject_keys WHERE subject = ?", (subject,)).fetchone()
        return bool(row and row[0])


def _now() -> str:
    return datetime.now(UTC).isoformat()


def workflow_of(context: SerializationContext | None) -> str | None:
    """The workflow a payload belongs to, from the SDK's serialization context (None: no workflow)."""
    if isinstance(context, (WorkflowSerializationContext, ActivitySerializationContext)):
        return context.workflow_id or None
    return None


def subject_of(context: SerializationContext | None) -> str | None:
    """The complaint case a payload belongs to, from the SDK's serialization context (None: not a case)."""
    workflow_id = workflow_of(context)
    if workflow_id and workflow_id.startswith(WORKFLOW_ID_PREFIX):
        return workflow_id
    return None


# ---------------------------------------------------------------- the codec


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """AES-GCM over whole payloads, each bound to its workflow; the key id, case and workflow ride in the metadata.

    `quiet_refusals` (the worker): inside a workflow, a payload that must not be opened
    becomes a marked placeholder (see the module's docstring) instead of an exception.
    Clients and the codec server keep it off: they raise, and their caller is told.
    """

    def __init__(
        self,
        ring: KeyRing,
        subjects: SubjectKeys,
        subject: str | None = None,
        workflow_id: str | None = None,
        quiet_refusals: bool = False,
        accept_plain: bool | None = None,
    ):
        self.ring = ring
        self.subjects = subjects
        self.subject = subject
        self.workflow_id = workflow_id
        self.quiet_refusals = quiet_refusals
        self.accept_plain = os.environ.get(PLAIN_SWITCH) == "1" if accept_plain is None else accept_plain

    def with_context(self, context: SerializationContext) -> EncryptionCodec:
        return EncryptionCodec(
            self.ring, self.subjects, subject_of(context), workflow_of(context), self.quiet_refusals, self.accept_plain
        )

    def bound(self, workflow_id: str) -> EncryptionCodec:
        """This codec as if in that workflow's context (the codec server's /bind/<workflow id>/)."""
        subject = workflow_id if workflow_id.startswith(WORKFLOW_ID_PREFIX) else None
        return EncryptionCodec(self.ring, self.subjects, subject, workflow_id, self.quiet_refusals, self.accept_plain)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        subject = None if payload.metadata.get(CLASS) == FIGURES else self.subject
        metadata = {"encoding": ENCODING}
        if subject:
            key = self.subjects.key_for(subject, create=True)
            assert key is not None  # made on first use
            metadata.update({KEY_ID: b"subject", SUBJECT: subject.encode()})
        else:
            key = self.ring.key(self.ring.current)
            metadata[KEY_ID] = self.ring.current.encode()
        if self.workflow_id:
            metadata[BOUND] = self.workflow_id.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, payload.SerializeToString(), (self.workflow_id or "").encode())
        return Payload(metadata=metadata, data=nonce + sealed)

    def decode_one(self, payload: Payload) -> Payload:
        try:
            return self._open(payload)
        except NotOurs as refused:
            if self.quiet_refusals:
                return refused.placeholder()
            raise

    def _open(self, payload: Payload) -> Payload:
        in_workflow = self.workflow_id is not None
        if payload.metadata.get("encoding") != ENCODING:
            if in_workflow and not self.accept_plain:
                raise NotOurs(
                    "it was sent unencrypted: encode through the codec server "
                    f"(--codec-endpoint <codec>/bind/{self.workflow_id}) or with the Redress client"
                )
            return payload  # plain, and accepted (no workflow context, or the legacy switch)
        subject = payload.metadata.get(SUBJECT, b"").decode()
        bound = payload.metadata.get(BOUND, b"").decode()
        if in_workflow:
            if (bound or subject) and (bound or subject) != self.workflow_id:
                raise NotOurs("it was sealed for another workflow")
            if not (bound or subject) and not self.accept_plain:
                raise NotOurs(
                    "it is not bound to this workflow: encode through the codec server "
                    f"(--codec-endpoint <codec>/bind/{self.workflow_id})"
                )
        if subject:
            key = self.subjects.key_for(subject, create=False)  # PersonalDataErased once erased
            if key is None:
                raise NotOurs(
                    f"no key for {subject} here: this host does not share the deployment's subject keys",
                    missing_key=True,
                )
            associated = bound or subject  # before binding, a case's payloads were bound to their case alone
        else:
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            if key_id not in self.ring.keys:
                raise NotOurs(
                    f"payload key {key_id[:40]!r} is not in this key ring; copy codec.json from the "
                    "deployment (a key removed too early, or a ring not yet updated here)",
                    missing_key=True,
                )
            key = self.ring.keys[key_id]
            associated = bound
        try:
            plain = AESGCM(key).decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], associated.encode())
        except (InvalidTag, ValueError):
            raise NotOurs("it failed authentication: altered, forged, or sealed for another workflow") from None
        return Payload.FromString(plain)


class NotOurs(UnknownKey):
    """A payload this codec will not open: plaintext or another workflow's where ours is required, or forged."""

    def __init__(self, reason: str, missing_key: bool = False):
        self.reason = reason
        self.missing_key = missing_key
        super().__init__(f"payload refused: {reason}")

    def placeholder(self) -> Payload:
        """What a workflow receives instead: the converter makes it an `Undecodable` (workflows/messages.py)."""
        metadata = {"encoding": b"json/plain", UNDECODABLE: self.reason.encode()}
        if self.missing_key:
            metadata[MISSING_KEY] = b"1"
        return Payload(metadata=metadata, data=b"null")


# ---------------------------------------------------------------- the converter


class RedressPayloadConverter(PydanticPayloadConverter):
    """The pydantic JSON converter, marking anonymous figures so the codec keeps them off subject keys.

    A payload the codec refused (`NotOurs.placeholder`) becomes `Undecodable` where the
    receiver takes anything (message handlers, typed `Any`), and an error where a type
    is expected (then it came from our own side, and an operator must look).
    """

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        payloads = super().to_payloads(values)
        for value, payload in zip(values, payloads, strict=True):
            if isinstance(value, Outcome):
                payload.metadata[CLASS] = FIGURES
        return payloads

    def from_payloads(self, payloads: Sequence[Payload], type_hints: list[type] | None = None) -> list[Any]:
        hints = list(type_hints or [])
        if not any(_takes_anything(hint) for hint in hints) and not any(UNDECODABLE in p.metadata for p in payloads):
            return super().from_payloads(payloads, type_hints)
        values = []
        for index, payload in enumerate(payloads):
            hint = hints[index] if index < len(hints) else None
            if UNDECODABLE in payload.metadata:
                reason = payload.metadata[UNDECODABLE].decode()
                if not _takes_anything(hint):
                    raise ValueError(f"a payload was refused by the codec: {reason}")
                values.append(Undecodable(reason=reason, missing_key=MISSING_KEY in payload.metadata))
                continue
            try:
                values.extend(super().from_payloads([payload], [hint] if hint else None))
            except Exception as error:
                if not _takes_anything(hint):
                    raise
                # a message handler's argument: refused by the handler, and the SDK never logs what was sent
                values.append(Undecodable(reason=f"it could not be read as JSON ({type(error).__name__})"))
        return values


def _takes_anything(hint: Any) -> bool:
    """A message handler's raw argument (`Any`): anything the sender sent must reach it, to be refused there."""
    return hint is Any or hint is object


@dataclasses.dataclass(frozen=True)
class RedressDataConverter(DataConverter):
    """DataConverter whose with_context does not build converters only to throw them away.

    The worker asks for a converter in context for every payload sequence of every
    workflow task (our codec needs the workflow id). DataConverter.with_context
    clones with dataclasses.replace, which runs __post_init__ and so builds a new
    pydantic payload converter and failure converter, then overwrites both: a few
    per cent of the worker's CPU in bench/floor.py. A shallow copy keeps them.
    """

    def with_context(self, context: SerializationContext) -> RedressDataConverter:
        cloned = copy.copy(self)
        for name in ("payload_converter", "payload_codec", "failure_converter", "external_storage"):
            part = getattr(self, name)
            if isinstance(part, WithSerializationContext):
                object.__setattr__(cloned, name, part.with_context(context))
        return cloned


def data_converter(
    directory: Path | None = None, create_keys: bool = False, worker: bool = False, accept_plain: bool | None = None
) -> DataConverter:
    """The converter every Redress client and worker uses: pydantic JSON, then encryption.

    Failure messages and stack traces are encoded too: a refusal can quote the bad input.
    `worker=True` for workers (and replayers): refused payloads reach the workflow as
    `Undecodable` rather than failing its task. `accept_plain` overrides
    REDRESS_ACCEPT_PLAIN_PAYLOADS (the replay tests' recorded histories are plain).
    """
    directory = directory or keys_dir()
    ring = KeyRing.load(directory, create=create_keys)
    subjects = SubjectKeys(directory / "subjects.sqlite", ring)
    return RedressDataConverter(
        payload_converter_class=RedressPayloadConverter,
        payload_codec=EncryptionCodec(ring, subjects, quiet_refusals=worker, accept_plain=accept_plain),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def for_worker(converter: DataConverter) -> DataConverter:
    """The same converter with the worker's quiet refusals (a client's converter, reused by a worker in one process)."""
    encryption = codec_of(converter)
    return dataclasses.replace(
        converter,
        payload_codec=EncryptionCodec(
            encryption.ring, encryption.subjects, quiet_refusals=True, accept_plain=encryption.accept_plain
        ),
    )


def ring_of(converter: DataConverter) -> KeyRing:
    """The deployment key ring a converter encrypts with; a converter without our codec: the one in keys/."""
    encryption = converter.payload_codec
    return encryption.ring if isinstance(encryption, EncryptionCodec) else KeyRing.load(keys_dir())


def codec_of(converter: DataConverter) -> EncryptionCodec:
    codec = converter.payload_codec
    if not isinstance(codec, EncryptionCodec):
        raise TypeError("this client does not use the Redress encryption codec")
    return codec


def erase_subjects(converter: DataConverter, subjects: Iterable[str]) -> list[str]:
    codec = codec_of(converter)
    done = []
    for subject in subjects:
        codec.subjects.erase(subject)
        done.append(subject)
    return done
