"""Payload encryption: personal data reaches the Temporal server only as AES-GCM ciphertext.

Two kinds of key, both 256-bit AES-GCM:

- **Deployment keys** (`keys/codec.json`): a key ring with one `current` key that
  encrypts and any number of older ones that still decrypt, so rotation never
  makes an old payload unreadable. Each payload names its key id.
- **Subject keys**: one random key per complaint case, stored wrapped by a
  deployment key in the deployment's shared state (redress/state.py:
  `keys/subjects.sqlite`, or PostgreSQL with REDRESS_STATE_URL). Every payload of a complaint workflow and
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
from redress.state import (
    LocalState,
    SharedState,
    StateProblem,
    SubjectRow,
    fingerprint,
    open_state,
    owner_only,
    write_private,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
SUBJECT = "encryption-subject"
BOUND = "encryption-bound-to"  # the workflow id this payload belongs to (the associated data)
CLASS = "redress-class"
FIGURES = b"figures"  # anonymous by construction: never under a subject key
UNDECODABLE = "redress-undecodable"  # set by the codec on a payload it refused to open (the reason)
MISSING_KEY = "redress-missing-key"
GENERATION = "encryption-key-generation"  # a case key's generation, from the second on (SubjectKeys)
GENERATION_TAG = b"G"
NONCE_BYTES = 12
PLAIN_SWITCH = "REDRESS_ACCEPT_PLAIN_PAYLOADS"
PSEUDONYM_SWITCH = "REDRESS_CUSTOMER_IDS_ARE_PSEUDONYMS"
RING_VARIABLE = "REDRESS_PAYLOAD_KEY_RING"  # the ring's JSON itself, as a secret store or KMS agent injects it

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
        """The ring from REDRESS_PAYLOAD_KEY_RING (codec.json's text, as a secret store injects it), else the file."""
        injected = os.environ.get(RING_VARIABLE)
        if injected:
            return cls._parse(injected, RING_VARIABLE)
        path = cls.path(directory)
        if path.is_dir():  # what a container runtime mounts when the file it was told to mount is missing
            raise MissingKeys(
                f"{path} is a folder, not the key ring: make it with `redress keys rotate` and mount that"
            )
        if not path.exists():
            if not create:
                raise MissingKeys(
                    f"no payload keys at {path}: run `redress keys rotate` once, "
                    "or copy codec.json from another worker of this deployment"
                )
            return cls.rotate(directory, first=True)
        owner_only(path)
        return cls._parse(path.read_text(encoding="utf-8"), str(path))

    @classmethod
    def _parse(cls, text: str, where: str) -> KeyRing:
        try:
            data = json.loads(text)
            keys = {key_id: base64.b64decode(value, validate=True) for key_id, value in data["keys"].items()}
            current = data["current"]
            pseudonym_key = base64.b64decode(data.get("pseudonym_key", ""), validate=True)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise MissingKeys(f"{where}: not a key ring (codec.json: current, keys, pseudonym_key)") from None
        if current not in keys or any(len(k) != 32 for k in keys.values()):
            raise MissingKeys(f"{where}: `current` must name one of `keys`, each 32 bytes in base64")
        if pseudonym_key and len(pseudonym_key) != 32:
            raise MissingKeys(f"{where}: `pseudonym_key` must be 32 bytes in base64")
        return cls(current=current, keys=keys, pseudonym_key=pseudonym_key)

    @classmethod
    def rotate(cls, directory: Path, first: bool = False) -> KeyRing:
        """Add a new key and make it current; the old ones stay so old payloads still decrypt.

        `first`: only if there is no ring yet. Two processes starting at once (the worker and
        a CLI) must not each make their own: the loser of the race loads the winner's ring.
        """
        if os.environ.get(RING_VARIABLE):
            raise MissingKeys(
                f"the ring comes from {RING_VARIABLE}: rotate a copy of it (REDRESS_PAYLOAD_KEYS=<a private folder> "
                "redress keys rotate, without the variable) and put the new text where the variable is kept"
            )
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

    The rows live in the deployment's shared state (redress/state.py): a SQLite file beside
    the keys by default, PostgreSQL with REDRESS_STATE_URL. Nothing here caches a key: every
    lookup asks the store, so an erasure counts at once on every host.

    A case's key has generations. `rekey` gives the case a new key from now on and keeps the
    old one under `<case>~<generation>` until `shred_before` deletes it: what was sealed with it
    (a contact detail since corrected) is then unreadable, while what the case seals next is
    not. The generation rides inside the wrapped key (none: the first) and, from the second on,
    in each payload's metadata, so a payload always finds the key it was sealed with.
    """

    def __init__(self, store: SharedState | Path, ring: KeyRing):
        self.store = LocalState(store.parent, subjects_path=store) if isinstance(store, Path) else store
        self.ring = ring

    def key_for(self, subject: str, create: bool) -> bytes | None:
        """The subject's current key (made on first use when `create`); PersonalDataErased once erased."""
        found = self.current(subject, create)
        return found[1] if found else None

    def current(self, subject: str, create: bool) -> tuple[int, bytes] | None:
        """The subject's current generation and key (made on first use when `create`)."""
        row = self.store.subject_row(subject)
        if row is None:
            if not create:
                return None
            self.store.add_subject(subject, self.ring.current, self._wrap(subject, AESGCM.generate_key(256), 1))
            return self.current(subject, create=False)  # another process may have won the race
        return self._unwrap(subject, row)

    def of_generation(self, subject: str, generation: int) -> bytes | None:
        """The key a payload of that generation was sealed with: the current one, or an earlier one kept since a
        rekey (PersonalDataErased once shredded; None: no such generation here)."""
        current = self.current(subject, create=False)
        if current is None or current[0] == generation:
            return current[1] if current else None
        name = archived(subject, generation)
        row = self.store.subject_row(name)
        return self._unwrap(name, row)[1] if row else None

    def rekey(self, subject: str, from_generation: int) -> int:
        """A new key for the subject from now on; the one of `from_generation` is kept until `shred_before`.

        Idempotent for a retried step: once the subject is past `from_generation`, nothing more changes. Two
        attempts at once: the row is replaced only if it still holds the key read here, so one new key wins and
        the other attempt reads it back.
        """
        self.current(subject, create=True)  # made on first use
        row = self.store.subject_row(subject)
        assert row is not None
        generation, key = self._unwrap(subject, row)  # read once: the key and the bytes it is replaced by
        assert row.wrapped is not None
        if generation > from_generation:
            return generation
        name = archived(subject, generation)
        self.store.add_subject(name, self.ring.current, self._wrap(name, key, generation))
        fresh = self._wrap(subject, AESGCM.generate_key(256), generation + 1)
        if not self.store.replace_subject(subject, self.ring.current, fresh, replacing=row.wrapped):
            return self.rekey(subject, from_generation)  # another attempt came first: its key stands
        return generation + 1

    def shred_before(self, subject: str, generation: int) -> None:
        """Delete every earlier generation's key for good; call `after_erasure` next."""
        for earlier in range(1, generation):
            self.store.erase_subject(archived(subject, earlier))

    def _wrap(self, name: str, key: bytes, generation: int) -> bytes:
        plain = key if generation == 1 else GENERATION_TAG + generation.to_bytes(4, "big") + key
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self.ring.key(self.ring.current)).encrypt(nonce, plain, name.encode())

    def _unwrap(self, name: str, row: SubjectRow) -> tuple[int, bytes]:
        if row.erased_at is not None or row.wrapped is None or row.wrapping_key is None:
            raise PersonalDataErased(name, row.erased_at or "an unknown time")
        try:
            plain = AESGCM(self.ring.key(row.wrapping_key)).decrypt(
                row.wrapped[:NONCE_BYTES], row.wrapped[NONCE_BYTES:], name.encode()
            )
        except (InvalidTag, ValueError):
            raise KeyProblem(f"the stored key of {name} does not open with the deployment key: altered") from None
        if len(plain) == 32:
            return 1, plain
        return int.from_bytes(plain[1:5], "big"), plain[5:]

    def erase(self, subject: str) -> None:
        """Delete the key, and any earlier generation's, for good; call `after_erasure` once a batch is done."""
        row = self.store.subject_row(subject)
        if row is not None and row.erased_at is None:
            self.shred_before(subject, self._unwrap(subject, row)[0])
        self.store.erase_subject(subject)

    def after_erasure(self) -> list[str]:
        """What the store does so that the erased keys are in none of its files, and what it cannot do."""
        try:
            return self.store.after_erasure()
        except StateProblem as problem:
            raise KeyProblem(str(problem)) from None

    def erased(self, subject: str) -> bool:
        row = self.store.subject_row(subject)
        return bool(row and row.erased_at)


def archived(subject: str, generation: int) -> str:
    """Where a case key's earlier generation is kept between a rekey and its shredding."""
    return f"{subject}~{generation}"


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
        looked_up: dict[str, Any] = {}  # one lookup per case per call, forgotten when it returns
        return [self.encode_one(p, looked_up) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        looked_up: dict[str, Any] = {}
        return [self.decode_one(p, looked_up) for p in payloads]

    def _current_key(self, subject: str, looked_up: dict[str, Any] | None) -> tuple[int, bytes]:
        """The case's current generation and key (made on first use); within one codec call, asked once (never
        kept longer: erasure)."""
        if looked_up is None or looked_up.get(subject) is None:
            found = self.subjects.current(subject, create=True)
            assert found is not None  # made on first use
            if looked_up is None:
                return found
            looked_up[subject] = found
        current: tuple[int, bytes] = looked_up[subject]
        return current

    def _key_of(self, subject: str, generation: int, looked_up: dict[str, Any] | None) -> bytes | None:
        """The key of the generation a payload names; within one codec call, asked once."""
        name = archived(subject, generation)
        if looked_up is None:
            return self.subjects.of_generation(subject, generation)
        if name not in looked_up:
            looked_up[name] = self.subjects.of_generation(subject, generation)
        key: bytes | None = looked_up[name]
        return key

    def encode_one(self, payload: Payload, looked_up: dict[str, Any] | None = None) -> Payload:
        subject = None if payload.metadata.get(CLASS) == FIGURES else self.subject
        metadata = {"encoding": ENCODING}
        if subject:
            generation, key = self._current_key(subject, looked_up)
            metadata.update({KEY_ID: b"subject", SUBJECT: subject.encode()})
            if generation > 1:
                metadata[GENERATION] = str(generation).encode()
        else:
            key = self.ring.key(self.ring.current)
            metadata[KEY_ID] = self.ring.current.encode()
        if self.workflow_id:
            metadata[BOUND] = self.workflow_id.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, payload.SerializeToString(), (self.workflow_id or "").encode())
        return Payload(metadata=metadata, data=nonce + sealed)

    def decode_one(self, payload: Payload, looked_up: dict[str, Any] | None = None) -> Payload:
        try:
            return self._open(payload, looked_up)
        except NotOurs as refused:
            if self.quiet_refusals:
                return refused.placeholder()
            raise

    def _open(self, payload: Payload, looked_up: dict[str, Any] | None) -> Payload:
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
            generation = payload.metadata.get(GENERATION, b"1").decode()
            if not generation.isdigit() or not 0 < int(generation) < 1_000_000:
                raise NotOurs("its key generation is not a number: altered")
            key = self._key_of(subject, int(generation), looked_up)  # PersonalDataErased once erased or shredded
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
    state = open_state(directory)
    ring = deployment_ring(directory, state, create=create_keys)
    subjects = SubjectKeys(state, ring)
    return RedressDataConverter(
        payload_converter_class=RedressPayloadConverter,
        payload_codec=EncryptionCodec(ring, subjects, quiet_refusals=worker, accept_plain=accept_plain),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def deployment_ring(directory: Path, state: SharedState, create: bool = False) -> KeyRing:
    """This host's key ring, checked against the deployment's shared state.

    A shared store that knows the deployment's keys already never lets a host make a ring of
    its own (it would write what no other host can read): the host must be given codec.json.
    With a shared store the key that encrypts is the deployment's current one, which
    `redress keys activate` switches once every process holds it.
    """
    ring = KeyRing.load(directory, create=create and not state.knows_ring())
    prints = {key_id: fingerprint(key) for key_id, key in ring.keys.items()}
    if ring.pseudonym_key:
        prints["pseudonym"] = fingerprint(ring.pseudonym_key)
    try:
        current = state.reconcile_ring(prints, ring.current)
    except StateProblem as problem:
        raise MissingKeys(str(problem)) from None
    if ring.pseudonym_key:  # stable across rotations and the same on every host
        state.trust_ring(ring.pseudonym_key)
    return ring if current == ring.current else dataclasses.replace(ring, current=current)


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


def erase_subjects(converter: DataConverter, subjects: Iterable[str]) -> tuple[list[str], list[str]]:
    """Delete the subjects' keys; returns them and what the store could not make unrecoverable itself."""
    codec = codec_of(converter)
    done = []
    for subject in subjects:
        codec.subjects.erase(subject)
        done.append(subject)
    return done, codec.subjects.after_erasure() if done else []
