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
construction (no names, contacts or free text; see workflows/contract.py) and is
marked so by the payload converter, so it stays under a deployment key and
reports can still count an erased case.

Payloads without our encoding (sent by a client with no codec) pass through,
so a plain-JSON client keeps working; docs/security.md says how it can encrypt
too (the codec server's /encode).
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
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

from workflows.contract import WORKFLOW_ID_PREFIX, Outcome

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
SUBJECT = "encryption-subject"
CLASS = "redress-class"
FIGURES = b"figures"  # anonymous by construction: never under a subject key
NONCE_BYTES = 12

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


# ---------------------------------------------------------------- deployment keys


@dataclasses.dataclass(frozen=True)
class KeyRing:
    """Deployment keys by id; `current` encrypts, all decrypt."""

    current: str
    keys: dict[str, bytes]

    @staticmethod
    def path(directory: Path) -> Path:
        return directory / "codec.json"

    @classmethod
    def load(cls, directory: Path, create: bool = False) -> KeyRing:
        path = cls.path(directory)
        if not path.exists():
            if not create:
                raise MissingKeys(f"no payload keys at {path}: run `redress keys rotate` once, "
                                  "or copy codec.json from another worker of this deployment")
            return cls.rotate(directory, first=True)
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = {key_id: base64.b64decode(value) for key_id, value in data["keys"].items()}
        if data["current"] not in keys or any(len(k) != 32 for k in keys.values()):
            raise MissingKeys(f"{path}: `current` must name one of `keys`, each 32 bytes in base64")
        return cls(current=data["current"], keys=keys)

    @classmethod
    def rotate(cls, directory: Path, first: bool = False) -> KeyRing:
        """Add a new key and make it current; the old ones stay so old payloads still decrypt.

        `first`: only if there is no ring yet. Two processes starting at once (the worker and
        a CLI) must not each make their own: the loser of the race loads the winner's ring.
        """
        directory.mkdir(parents=True, exist_ok=True)
        path = cls.path(directory)
        existing = {} if first else (cls.load(directory).keys if path.exists() else {})
        key_id = f"k{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(3)}"
        keys = {**existing, key_id: AESGCM.generate_key(bit_length=256)}
        text = json.dumps({"current": key_id, "keys": {k: base64.b64encode(v).decode() for k, v in keys.items()}},
                          indent=2)
        if not first:
            write_private(path, text)
            return cls(current=key_id, keys=keys)
        staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        write_private(staged, text)
        try:
            os.link(staged, path)  # atomic, and fails if a ring appeared meanwhile
        except FileExistsError:
            return cls.load(directory)
        finally:
            staged.unlink()
        return cls(current=key_id, keys=keys)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKey(f"payload key {key_id!r} is not in this key ring; "
                             "a key was removed before every payload under it expired") from None


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
        with self._connect() as db:
            db.execute("""CREATE TABLE IF NOT EXISTS subject_keys (
                subject TEXT PRIMARY KEY, wrapping_key TEXT, wrapped BLOB,
                created_at TEXT NOT NULL, erased_at TEXT)""")
        os.chmod(path, 0o600)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            self._local.db = db
        return db

    def key_for(self, subject: str, create: bool) -> bytes | None:
        """The subject's key (made on first use when `create`); PersonalDataErased once erased."""
        db = self._connect()
        row = db.execute("SELECT wrapping_key, wrapped, erased_at FROM subject_keys WHERE subject = ?",
                         (subject,)).fetchone()
        if row is None:
            if not create:
                return None
            fresh = AESGCM.generate_key(bit_length=256)
            nonce = os.urandom(NONCE_BYTES)
            wrapped = nonce + AESGCM(self.ring.key(self.ring.current)).encrypt(nonce, fresh, subject.encode())
            db.execute("INSERT OR IGNORE INTO subject_keys (subject, wrapping_key, wrapped, created_at) "
                       "VALUES (?, ?, ?, ?)", (subject, self.ring.current, wrapped, _now()))
            return self.key_for(subject, create=False)  # another process may have won the race
        wrapping_key, wrapped, erased_at = row
        if erased_at is not None:
            raise PersonalDataErased(subject, erased_at)
        return AESGCM(self.ring.key(wrapping_key)).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:],
                                                           subject.encode())

    def erase(self, subject: str) -> None:
        """Delete the key for good (the row stays, so decoding says 'erased' rather than 'unknown')."""
        self._connect().execute(
            "INSERT INTO subject_keys (subject, created_at, erased_at) VALUES (?, ?, ?) "
            "ON CONFLICT(subject) DO UPDATE SET wrapped = NULL, wrapping_key = NULL, "
            "erased_at = COALESCE(erased_at, excluded.erased_at)", (subject, _now(), _now()))

    def erased(self, subject: str) -> bool:
        row = self._connect().execute("SELECT erased_at FROM subject_keys WHERE subject = ?", (subject,)).fetchone()
        return bool(row and row[0])


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def subject_of(context: SerializationContext | None) -> str | None:
    """The complaint case a payload belongs to, from the SDK's serialization context (None: not a case)."""
    workflow_id = None
    if isinstance(context, (WorkflowSerializationContext, ActivitySerializationContext)):
        workflow_id = context.workflow_id
    if workflow_id and workflow_id.startswith(WORKFLOW_ID_PREFIX):
        return workflow_id
    return None


# ---------------------------------------------------------------- the codec


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """AES-GCM over whole payloads; the key id (and subject) ride in the payload's metadata."""

    def __init__(self, ring: KeyRing, subjects: SubjectKeys, subject: str | None = None):
        self.ring = ring
        self.subjects = subjects
        self.subject = subject

    def with_context(self, context: SerializationContext) -> EncryptionCodec:
        return EncryptionCodec(self.ring, self.subjects, subject_of(context))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        subject = None if payload.metadata.get(CLASS) == FIGURES else self.subject
        if subject:
            key = self.subjects.key_for(subject, create=True)
            metadata = {"encoding": ENCODING, KEY_ID: b"subject", SUBJECT: subject.encode()}
        else:
            key = self.ring.key(self.ring.current)
            metadata = {"encoding": ENCODING, KEY_ID: self.ring.current.encode()}
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, payload.SerializeToString(), (subject or "").encode())
        return Payload(metadata=metadata, data=nonce + sealed)

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # plain: sent by a client without the codec
        subject = payload.metadata.get(SUBJECT, b"").decode()
        if subject:
            key = self.subjects.key_for(subject, create=False)
            if key is None:
                raise UnknownKey(f"no key for {subject}: this host does not share the deployment's subject keys")
        else:
            key = self.ring.key(payload.metadata[KEY_ID].decode())
        try:
            plain = AESGCM(key).decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], subject.encode())
        except InvalidTag:
            raise UnknownKey("a payload failed authentication: wrong key, or it was altered") from None
        return Payload.FromString(plain)


# ---------------------------------------------------------------- the converter


class RedressPayloadConverter(PydanticPayloadConverter):
    """The pydantic JSON converter, marking anonymous figures so the codec keeps them off subject keys."""

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        payloads = super().to_payloads(values)
        for value, payload in zip(values, payloads, strict=True):
            if isinstance(value, Outcome):
                payload.metadata[CLASS] = FIGURES
        return payloads


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


def data_converter(directory: Path | None = None, create_keys: bool = False) -> DataConverter:
    """The converter every Redress client and worker uses: pydantic JSON, then encryption.

    Failure messages and stack traces are encoded too: a refusal can quote the bad input.
    """
    directory = directory or keys_dir()
    ring = KeyRing.load(directory, create=create_keys)
    subjects = SubjectKeys(directory / "subjects.sqlite", ring)
    return RedressDataConverter(
        payload_converter_class=RedressPayloadConverter,
        payload_codec=EncryptionCodec(ring, subjects),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


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
