"""The deployment's shared state in PostgreSQL: any number of workers on any number of hosts.

Chosen by `REDRESS_STATE_URL=postgresql://user@host/db` (redress/state.py says what is kept and
why). psycopg 3 with its connection pool; one pool per process and URL.

Start-up is safe with many processes at once: the database is created if missing (a race
lost is a race won by another), and the schema is created and migrated inside one
transaction holding an advisory lock, so exactly one process applies each migration and the
others find it done. Migrations are append-only: a running older worker keeps working
against a newer schema.

Nothing erasable is cached: every subject-key lookup is one indexed read (a prepared
statement after the first few), so `redress erase-customer` on one host counts on every other
host's next lookup. What PostgreSQL itself keeps after an erasure (dead row versions until
vacuum, WAL, backups) is in `after_erasure` and the README ("Several workers on several hosts").
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import structlog
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from redress.state import SharedState, StateProblem, StateUnavailable, SubjectRow, content_digest

log = structlog.get_logger("redress.state")

SCHEMA_LOCK = 0x7265_6472_6573_73  # "redress": the advisory lock every process takes to migrate
HOLDER_SECONDS = 60.0  # a process says which deployment keys it holds this often
HOLDER_WINDOW = "3 minutes"  # a process not heard from for this long is gone (for `keys activate`)
CONNECT_SECONDS = 10
PUBLICATIONS_PAGE = 20  # rule publications read at a time (every few seconds, by every worker and console)

# Append-only: each entry is applied once, in order, by whichever process gets the lock first.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE redress.subject_keys (
        subject      text PRIMARY KEY,
        wrapping_key text,
        wrapped      bytea,
        created_at   timestamptz NOT NULL DEFAULT now(),
        erased_at    timestamptz
    );
    CREATE TABLE redress.rule_versions (
        version    text PRIMARY KEY,
        sha256     text NOT NULL,
        seal       text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE redress.rule_files (
        version text NOT NULL REFERENCES redress.rule_versions (version),
        name    text NOT NULL,
        content bytea NOT NULL,
        PRIMARY KEY (version, name)
    );
    CREATE TABLE redress.rule_publications (
        number       bigserial PRIMARY KEY,
        version      text NOT NULL REFERENCES redress.rule_versions (version),
        published_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        published_by text NOT NULL,
        seal         text NOT NULL
    );
    CREATE TABLE redress.codec_tokens (
        name      text PRIMARY KEY,
        digest    text NOT NULL,
        issued_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE redress.key_ring (
        key_id      text PRIMARY KEY,
        fingerprint text NOT NULL,
        is_current  boolean NOT NULL DEFAULT false,
        added_at    timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX key_ring_one_current ON redress.key_ring (is_current) WHERE is_current;
    CREATE TABLE redress.key_holders (
        holder  text PRIMARY KEY,
        key_ids text[] NOT NULL,
        seen_at timestamptz NOT NULL DEFAULT now()
    );
    """,
]


def ensure_database(url: str) -> None:
    """Create the URL's database when it does not exist (needs CREATEDB; else an admin creates it once).

    libpq reports a missing database as a plain connection failure, so the maintenance
    database `postgres` is asked whether it exists; any other failure is the first one.
    """
    try:
        psycopg.connect(url, connect_timeout=CONNECT_SECONDS).close()
        return
    except psycopg.OperationalError as failure:
        name = str(conninfo_to_dict(url).get("dbname") or "")
        try:
            admin = psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True)
        except psycopg.Error:
            raise failure from None
        with admin:
            if not name:
                raise failure from None
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return  # made by another process since (else the next connection says what is wrong)
            try:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                log.info("state database created", database=name)
            except (errors.DuplicateDatabase, errors.UniqueViolation):
                pass  # another process made it meanwhile (caught by the catalog's index if both got that far)


def migrate(url: str) -> int:
    """Create or bring the schema up to date; returns how many migrations this process applied."""
    applied = 0
    with psycopg.connect(url, connect_timeout=CONNECT_SECONDS) as connection, connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        connection.execute("CREATE SCHEMA IF NOT EXISTS redress")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS redress.migrations "
            "(number integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = connection.execute("SELECT coalesce(max(number), 0) FROM redress.migrations").fetchone()
        done = row[0] if row else 0
        for number, statement in enumerate(MIGRATIONS, start=1):
            if number <= done:
                continue
            connection.execute(statement.encode())  # several statements: sent as one simple query
            connection.execute("INSERT INTO redress.migrations (number) VALUES (%s)", (number,))
            applied += 1
    if applied:
        log.info("state schema migrated", applied=applied, now_at=len(MIGRATIONS))
    return applied


def redacted(error: Exception, url: str) -> str:
    """The error's text without the URL's password; nothing of it when the URL itself could not be read.

    (libpq quotes a connection string it cannot parse, password included.)
    """
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return f"{type(error).__name__}: REDRESS_STATE_URL is not a valid postgresql:// URL"
    text = str(error).strip()
    if password:
        text = text.replace(str(password), "***")
    return f"{type(error).__name__}: {text}"


_OPEN: dict[str, PostgresState] = {}
_OPENING = threading.Lock()


class PostgresState(SharedState):
    shared = True

    def __init__(self, url: str):
        self.url = url
        try:
            ensure_database(url)
            migrate(url)
        except psycopg.Error as error:
            raise StateProblem(
                f"the shared state at REDRESS_STATE_URL cannot be used: {redacted(error, url)}"
            ) from None
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=8,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_SECONDS},
            name="redress-state",
            timeout=CONNECT_SECONDS,  # waiting for a connection: then StateUnavailable, not a hang
            open=True,
        )
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._publication_key: bytes | None = None
        self._token_key: bytes | None = None
        self._forged_seen: set[int] = set()
        self._newest_seen: datetime | None = None  # the newest sealed publication this process has seen
        self._held: list[str] | None = None
        self._heartbeat: threading.Thread | None = None
        self._closing = threading.Event()  # ends the heartbeat with the pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; a database that does not answer is a StateUnavailable, which callers retry.

        (A worker's workflow task that meets it fails and is retried by Temporal; the codec
        server answers 503; nothing is decided on a store it could not read.)
        """
        try:
            with self.pool.connection() as connection:
                yield connection
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise StateUnavailable(f"the shared state did not answer ({type(error).__name__}); try again") from None

    @staticmethod
    def shared_by_process(url: str) -> PostgresState:
        with _OPENING:
            if url not in _OPEN:
                _OPEN[url] = PostgresState(url)
            return _OPEN[url]

    @staticmethod
    def close_all() -> None:
        """Close this process' pools (tests whose server goes away; a process that ends needs not)."""
        with _OPENING:
            for state in _OPEN.values():
                state._closing.set()
                state.pool.close()
            _OPEN.clear()

    # ---------------------------------------------------------------- subject keys

    def subject_row(self, subject: str) -> SubjectRow | None:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT wrapping_key, wrapped, erased_at FROM redress.subject_keys WHERE subject = %s", (subject,)
            ).fetchone()
        if row is None:
            return None
        wrapping_key, wrapped, erased_at = row
        return SubjectRow(wrapping_key, bytes(wrapped) if wrapped is not None else None, _iso(erased_at))

    def add_subject(self, subject: str, wrapping_key: str, wrapped: bytes) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO redress.subject_keys (subject, wrapping_key, wrapped) VALUES (%s, %s, %s) "
                "ON CONFLICT (subject) DO NOTHING",
                (subject, wrapping_key, wrapped),
            )

    def replace_subject(self, subject: str, wrapping_key: str, wrapped: bytes, replacing: bytes) -> bool:
        with self._connection() as connection:
            changed = connection.execute(
                "UPDATE redress.subject_keys SET wrapping_key = %s, wrapped = %s "
                "WHERE subject = %s AND erased_at IS NULL AND wrapped = %s",
                (wrapping_key, wrapped, subject, replacing),
            )
            return changed.rowcount == 1

    def erase_subject(self, subject: str) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO redress.subject_keys (subject, erased_at) VALUES (%s, now()) "
                "ON CONFLICT (subject) DO UPDATE SET wrapped = NULL, wrapping_key = NULL, "
                "erased_at = coalesce(redress.subject_keys.erased_at, excluded.erased_at)",
                (subject,),
            )

    def after_erasure(self) -> list[str]:
        """Vacuum the key table (its dead row versions go) and ask for a checkpoint; say what is left.

        An UPDATE leaves the old row version, wrapped key included, in the table's file
        until VACUUM removes it; the WAL holds the insert until its segment is recycled (or
        archived); base backups hold whatever they copied. Vacuum needs no special right; a
        checkpoint needs pg_checkpoint (PostgreSQL 15) or a superuser, and is skipped without.
        """
        remaining = [
            "WAL segments written before the erasure hold the key until recycled; archived WAL and base "
            "backups hold it until they expire: keep them no longer than your erasure deadline"
        ]
        with self._connection() as connection:
            owner = connection.execute(
                "SELECT tableowner = current_user FROM pg_tables "
                "WHERE schemaname = 'redress' AND tablename = 'subject_keys'"
            ).fetchone()
            if not (owner and owner[0]):
                remaining.append(
                    "this role does not own redress.subject_keys, so VACUUM skipped it: run it as the owner"
                )
            connection.execute("VACUUM (INDEX_CLEANUP ON) redress.subject_keys")
            older = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid()"
            ).fetchone()
            if older and older[0]:
                remaining.append(
                    f"{older[0]} open transaction(s) (a pg_dump, a long report) may have kept the old row: "
                    "run VACUUM redress.subject_keys once they end"
                )
            try:
                connection.execute("CHECKPOINT")
            except errors.InsufficientPrivilege:
                remaining.append("no CHECKPOINT right (pg_checkpoint): the next scheduled checkpoint flushes the pages")
        return remaining

    # ---------------------------------------------------------------- codec tokens

    def token_digests(self) -> dict[str, str]:
        with self._connection() as connection:
            return dict(connection.execute("SELECT name, digest FROM redress.codec_tokens").fetchall())

    def put_token(self, name: str, digest: str) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO redress.codec_tokens (name, digest) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, issued_at = now()",
                (name, digest),
            )

    def drop_token(self, name: str) -> bool:
        with self._connection() as connection:
            return connection.execute("DELETE FROM redress.codec_tokens WHERE name = %s", (name,)).rowcount > 0

    # ---------------------------------------------------------------- deployment key ring

    def knows_ring(self) -> bool:
        with self._connection() as connection:
            row = connection.execute("SELECT EXISTS (SELECT 1 FROM redress.key_ring)").fetchone()
        return bool(row and row[0])

    def reconcile_ring(self, fingerprints: Mapping[str, str], current: str) -> str:
        """The first host records its ring; every later one must hold the same keys, and may add new ones.

        A key this host has and the store does not is recorded as staged (`redress keys rotate`);
        it encrypts only once `redress keys activate` makes it current everywhere.
        """
        with self._connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK + 1,))
            known = dict(connection.execute("SELECT key_id, fingerprint FROM redress.key_ring").fetchall())
            differ = sorted(k for k, p in fingerprints.items() if k in known and known[k] != p)
            lacking = sorted(set(known) - set(fingerprints))
            if differ or lacking:
                raise StateProblem(
                    "this host's codec.json is not the deployment's: "
                    + (f"keys with other values: {', '.join(differ)}; " if differ else "")
                    + (f"keys it lacks: {', '.join(lacking)}; " if lacking else "")
                    + "copy codec.json from a host of this deployment (or its secret store)"
                )
            first = not known
            for key_id, print_ in fingerprints.items():
                if key_id not in known:
                    connection.execute(
                        "INSERT INTO redress.key_ring (key_id, fingerprint, is_current) VALUES (%s, %s, %s)",
                        (key_id, print_, first and key_id == current),
                    )
            row = connection.execute("SELECT key_id FROM redress.key_ring WHERE is_current").fetchone()
        chosen = row[0] if row else current
        if chosen == "pseudonym" or chosen not in fingerprints:
            raise StateProblem(f"the deployment's current key {chosen[:40]!r} is not a payload key of this ring")
        self._hold([k for k in fingerprints if k != "pseudonym"])
        return chosen

    def activate_key(self, key_id: str, fingerprint: str, force: bool = False) -> None:
        """Make a staged key the one that encrypts, once every live process holds it."""
        with self._connection() as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK + 1,))
            row = connection.execute("SELECT fingerprint FROM redress.key_ring WHERE key_id = %s", (key_id,)).fetchone()
            if key_id == "pseudonym" or row is None or row[0] != fingerprint:
                raise StateProblem(f"key {key_id} is not this deployment's: run `redress keys rotate` first")
            lacking = [
                holder
                for (holder,) in connection.execute(
                    "SELECT holder FROM redress.key_holders "
                    f"WHERE seen_at > now() - interval '{HOLDER_WINDOW}' AND NOT (%s = ANY (key_ids)) "
                    "ORDER BY holder",
                    (key_id,),
                )
            ]
            if lacking and not force:
                raise StateProblem(
                    f"{len(lacking)} running process(es) do not hold {key_id} yet ({', '.join(lacking[:5])}): "
                    "give them the new codec.json and restart them, then activate again"
                )
            connection.execute("UPDATE redress.key_ring SET is_current = false WHERE is_current")
            connection.execute("UPDATE redress.key_ring SET is_current = true WHERE key_id = %s", (key_id,))

    def trust_ring(self, secret: bytes) -> None:
        self._publication_key = hmac.new(secret, b"redress rule publications v1", hashlib.sha256).digest()
        self._token_key = hmac.new(secret, b"redress codec tokens v1", hashlib.sha256).digest()

    def token_digest(self, token: str) -> str:
        """Keyed: a row written by someone without the deployment ring is no token at all."""
        if self._token_key is None:
            raise StateProblem("no deployment key ring in this process: codec tokens cannot be checked")
        return hmac.new(self._token_key, token.encode(), hashlib.sha256).hexdigest()

    def _hold(self, key_ids: list[str]) -> None:
        """Say which keys this process holds, now and every HOLDER_SECONDS while it lives."""
        self._held = sorted(key_ids)
        self._say_held()
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._keep_saying, name="redress-state-holder", daemon=True)
            self._heartbeat.start()

    def _say_held(self) -> None:
        with self._connection() as connection:
            connection.execute(
                "INSERT INTO redress.key_holders (holder, key_ids, seen_at) VALUES (%s, %s, now()) "
                "ON CONFLICT (holder) DO UPDATE SET key_ids = excluded.key_ids, seen_at = now()",
                (self.holder, self._held),
            )
            connection.execute("DELETE FROM redress.key_holders WHERE seen_at < now() - interval '1 day'")

    def _keep_saying(self) -> None:
        while not self._closing.wait(HOLDER_SECONDS):
            try:
                self._say_held()
            except (psycopg.Error, StateProblem) as error:  # the database may come back: keep trying
                log.warning("could not renew this process' key holding", error=type(error).__name__)

    # ---------------------------------------------------------------- rule versions

    def _seal(self, *parts: str) -> str:
        if self._publication_key is None:
            raise StateProblem("no deployment key ring in this process: it can neither seal nor check rule versions")
        return hmac.new(self._publication_key, "|".join(parts).encode(), hashlib.sha256).hexdigest()

    def publish_rules(self, version: str, files: Mapping[str, bytes], newest: bool) -> None:
        """Keep the files with a sealed digest of them all; a publication sealed over the database's own clock."""
        digest = content_digest(files.items())
        with self._connection() as connection, connection.transaction():
            inserted = connection.execute(
                "INSERT INTO redress.rule_versions (version, sha256, seal) VALUES (%s, %s, %s) "
                "ON CONFLICT (version) DO NOTHING",
                (version, digest, self._seal("version", version, digest)),
            ).rowcount
            if inserted:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO redress.rule_files (version, name, content) VALUES (%s, %s, %s)",
                        [(version, name, content) for name, content in sorted(files.items())],
                    )
            row = connection.execute("SELECT clock_timestamp()").fetchone()
            assert row is not None
            if inserted or newest:
                connection.execute(
                    "INSERT INTO redress.rule_publications (version, published_at, published_by, seal) "
                    "VALUES (%s, %s, %s, %s)",
                    (version, row[0], self.holder, self._seal("publication", version, _iso(row[0]) or "")),
                )
        if inserted or newest:
            self._newest_seen = max(self._newest_seen or row[0], row[0])  # never follow anything older than this
            log.info("rule version published to the shared state", rule_version=version, new=bool(inserted))

    def rule_files(self, version: str) -> dict[str, bytes] | None:
        """A version's files, only if their full SHA-256 is the one a holder of the ring sealed."""
        with self._connection() as connection:
            sealed = connection.execute(
                "SELECT sha256, seal FROM redress.rule_versions WHERE version = %s", (version,)
            ).fetchone()
            rows = connection.execute(
                "SELECT name, content FROM redress.rule_files WHERE version = %s", (version,)
            ).fetchall()
        files = {name: bytes(content) for name, content in rows}
        if sealed is None or not files:
            return None
        digest, seal = sealed
        if content_digest(files.items()) != digest or not hmac.compare_digest(
            self._seal("version", version, digest), seal
        ):
            log.error("a rule version in the shared state is not as its publisher sealed it; not used", asked=version)
            return None
        return files

    def newest_rules(self) -> str | None:
        """The newest publication sealed by a holder of the deployment ring, by the database's clock.

        Read a page at a time, newest first, until one's seal holds: forged rows are skipped
        (and said once), rows dated ahead of the database's clock are forged and not read. A
        process never goes back behind the newest publication it has seen: deleting rows
        cannot roll it back (a process starting afresh has only what the rows say).
        """
        after: tuple[datetime | None, int | None] = (None, None)
        with self._connection() as connection:
            while rows := connection.execute(
                "SELECT number, version, published_at, seal FROM redress.rule_publications "
                "WHERE published_at <= clock_timestamp() + interval '5 minutes' AND (%s::timestamptz IS NULL "
                "OR (published_at, number) < (%s::timestamptz, %s::bigint)) "
                "ORDER BY published_at DESC, number DESC LIMIT %s",
                (after[0], after[0], after[1], PUBLICATIONS_PAGE),
            ).fetchall():
                for number, version, published_at, seal in rows:
                    if hmac.compare_digest(self._seal("publication", str(version), _iso(published_at) or ""), seal):
                        if self._newest_seen is not None and published_at < self._newest_seen:
                            log.error("the newest rule publication went back in time (rows deleted?); not followed")
                            return None
                        self._newest_seen = published_at
                        return str(version)
                    if number not in self._forged_seen:
                        self._forged_seen.add(number)
                        log.error("a rule publication not sealed with the deployment ring was ignored", number=number)
                after = (rows[-1][2], rows[-1][0])
        return None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None
