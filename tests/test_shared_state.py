"""Workers that keep nothing on their disk: two hosts, ten starting at once, erasure seen everywhere (issue 19).

A real PostgreSQL (Debian's binaries, tests/helpers/postgres.py) and the session's Temporal dev
server. Each host is a folder of its own with only a copy of the deployment key in it
(tests/helpers/hosts.py); workers are real `redress worker` processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from activities.rules.loader import version_of
from activities.rules.store import RuleStore
from redress import codec, codec_server, signatures
from redress.contract import (
    ApprovalDecision,
    Feedback,
    RemedyProposal,
    Resolution,
    ResponseRecord,
    workflow_id_for,
)
from redress.state import StateProblem, StateUnavailable
from redress.state_postgres import MIGRATIONS, PostgresState
from tests.helpers.cases import complaint, eventually, stage_is
from tests.helpers.histories import payloads_in, personal_complaint, stored_history
from tests.helpers.hosts import deployment_keys, fresh_database, host, postgres_base, query
from tests.helpers.peer import Peer
from tests.helpers.postgres import binaries, postgres_server, stop_server
from tests.helpers.processes import ROOT, start_worker, stop, wait_for_line
from tests.helpers.rules import APPROVER_KEYS, write_rules

pytestmark = pytest.mark.skipif(binaries() is None, reason="needs Debian's postgresql (.ci/run installs it)")


@pytest.fixture(scope="module")
def postgres():
    with postgres_base() as base:
        yield base


@pytest.fixture
def state_url(postgres, monkeypatch):
    """An empty database on the real server; this process' clients and codec servers use it too."""
    url = fresh_database(postgres)
    monkeypatch.setenv("REDRESS_STATE_URL", url)
    yield url
    PostgresState.close_all()


def signed_approval(cid: str, amount: str) -> ApprovalDecision:
    at = datetime.now(UTC).replace(microsecond=0)
    terms = signatures.signed_terms(cid, "P1", "approve", Decimal(amount), "CNY", "wang.fang", at)
    return ApprovalDecision(
        proposal_id="P1",
        approver="wang.fang",
        signed_at=at,
        signature=signatures.sign(APPROVER_KEYS["wang.fang"], terms),
    )


def newest_rules(url: str) -> str | None:
    rows = query(url, "SELECT version FROM redress.rule_publications ORDER BY number DESC LIMIT 1")
    return rows[0][0] if rows else None


async def test_cases_begun_on_one_host_are_finished_on_another_after_the_first_is_killed(env, tmp_path, state_url):
    secret = deployment_keys(tmp_path / "secret")
    rules_v1 = write_rules(tmp_path / "rules-v1", first_response="10m", resolution="30m", survey_window="10m")
    a = host(tmp_path / "host-a", secret, rules_v1)
    b = host(tmp_path / "host-b", secret, rules_v1)  # B's files stay as they are: it never sees the edit
    desk = host(tmp_path / "desk", secret)  # where the agents' client runs
    queue = f"redress-hosts-{uuid.uuid4().hex[:6]}"
    with Peer() as peer:
        log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
        worker_a = await start_worker(a.environment(env, queue, state_url, peer.url), log_a)
        worker_b = None
        try:
            await wait_for_line(log_a, '"worker running"', worker_a)
            redress = desk.client(env, queue)
            v1 = newest_rules(state_url)

            # on A alone: one case awaiting a team lead's approval, triaged under v1
            first, _ = personal_complaint(f"hosts-{uuid.uuid4().hex[:6]}")
            cid1 = first["complaint_id"]
            await redress.submit(first)
            await stage_is(redress, cid1, "acknowledged")
            await redress.record_response(cid1, ResponseRecord(agent="li.na", message="Looking into it."))
            proposal = RemedyProposal(
                kind="refund", amount=Decimal("299"), currency="CNY", reason="broken", proposed_by="li.na"
            )
            answer = await redress.propose_remedy(cid1, proposal)
            assert answer.status.value == "awaiting_approval", answer

            # an admin edits A's rules: A publishes the new version, and triages the next case by it
            tiers = a.rules / "tiers.yaml"
            tiers.write_text(tiers.read_text().replace("first_response: 10m", "first_response: 11m"))
            v2 = await eventually(lambda: _changed(state_url, v1), timeout=30)
            second = complaint(complaint_id=f"HOSTS-{uuid.uuid4().hex[:6]}")
            cid2 = second["complaint_id"]
            await redress.submit(second)
            assert (await stage_is(redress, cid2, "acknowledged")).rule_version == v2

            worker_a.send_signal(signal.SIGKILL)
            await worker_a.wait()
            worker_b = await start_worker(b.environment(env, queue, state_url, peer.url), log_b)
            await wait_for_line(log_b, '"worker running"', worker_b)

            # B decides on A's case (its key is in the store, its version v1 too) and pays it once
            record = await redress.approve_remedy(cid1, signed_approval(cid1, "299"))
            assert record.status.value in ("approved", "executed"), record
            await stage_is(redress, cid1, "remedy_executed", timeout=30)
            await redress.resolve(cid1, Resolution(agent="li.na", summary="refunded", root_cause="billing_error"))
            await stage_is(redress, cid1, "follow_up")
            await redress.customer_feedback(cid1, Feedback(score=5))
            assert (await asyncio.wait_for(redress.outcome(cid1), timeout=60)).stage.value == "closed"
            assert [r.body["amount"] for r in peer.acted("/pay", complaint_id=cid1)] == ["299"]
            assert (await redress.status(cid1)).rule_version == v1

            # B carries on the case A triaged under v2, files B never had
            await redress.record_response(cid2, ResponseRecord(agent="li.na", message="On it."))
            small = RemedyProposal(
                kind="refund", amount=Decimal("30"), currency="CNY", reason="late", proposed_by="li.na"
            )
            await redress.propose_remedy(cid2, small)
            await stage_is(redress, cid2, "remedy_executed", timeout=30)
            assert len(peer.acted("/pay", complaint_id=cid2)) == 1
            assert (await redress.status(cid2)).rule_version == v2

            # a new case on B is triaged by the deployment's newest version, A's edit, not B's files
            third = complaint(complaint_id=f"HOSTS-{uuid.uuid4().hex[:6]}", received_at=datetime.now(UTC).isoformat())
            cid3 = third["complaint_id"]
            await redress.submit(third)
            status = await stage_is(redress, cid3, "acknowledged")
            assert status.rule_version == v2
            received = datetime.fromisoformat(third["received_at"])
            assert status.deadlines["first_response"].due - received >= timedelta(minutes=11) - timedelta(seconds=5)
            assert "rules follow the deployment's newest version" in log_b.read_text()

            # erasure through A's host: B's codec server answers 410 for that case at once
            start = payloads_in((await stored_history(env, workflow_id_for(cid1))).events[0])[0]
            body = json_format.MessageToJson(Payloads(payloads=[start]))
            token = codec_server.issue_token(a.keys, "auditor.kim")  # issued on A, counts on B's server
            with codec_server.CodecServer(b.keys, port=0) as server:
                async with httpx.AsyncClient(base_url=server.url) as http:
                    headers = {"Authorization": f"Bearer {token}"}
                    assert (await http.post("/decode", content=body, headers=headers)).status_code == 200
                    at_a = a.client(env, queue)

                    async def erased():
                        return cid1 in await at_a.erase_customer(first["customer"]["id"])

                    await eventually(erased)  # visibility must have seen the case close
                    gone = await http.post("/decode", content=body, headers=headers)
                    assert gone.status_code == 410, gone.text
                    assert "erased" in gone.json()["error"]
        finally:
            for process in (worker_a, worker_b):
                if process is not None and process.returncode is None:
                    await stop(process)

    text = log_a.read_text() + log_b.read_text()
    assert first["customer"]["name"] not in text and first["text"] not in text
    assert query(state_url, "SELECT wrapped FROM redress.subject_keys WHERE subject = %s", workflow_id_for(cid1)) == [
        (None,)
    ]


async def _changed(url: str, old: str | None) -> str | None:
    newest = newest_rules(url)
    return newest if newest and newest != old else None


async def test_ten_workers_starting_at_once_on_an_empty_database_make_the_schema_once(env, tmp_path, state_url):
    secret = deployment_keys(tmp_path / "secret")
    rules = write_rules(tmp_path / "rules")
    queue = f"redress-ten-{uuid.uuid4().hex[:6]}"
    hosts = [host(tmp_path / f"host-{n}", secret, rules) for n in range(10)]
    logs = [tmp_path / f"worker-{n}.log" for n in range(10)]
    workers = await asyncio.gather(
        *(
            start_worker(h.environment(env, queue, state_url, "http://127.0.0.1:9"), log)
            for h, log in zip(hosts, logs, strict=True)
        )
    )
    try:
        await asyncio.gather(
            *(wait_for_line(log, '"worker running"', w, timeout=120) for log, w in zip(logs, workers, strict=True))
        )
    finally:
        await asyncio.gather(*(stop(w) for w in workers if w.returncode is None))
    lines = [json.loads(line) for log in logs for line in log.read_text().splitlines() if line.startswith("{")]
    assert [line for line in lines if line.get("level") in ("error", "critical")] == []
    assert sum(line["event"] == "state schema migrated" for line in lines) == 1
    assert sum(line["event"] == "state database created" for line in lines) <= 1  # or made by a lost race: no error
    assert query(state_url, "SELECT number FROM redress.migrations") == [(n,) for n in range(1, len(MIGRATIONS) + 1)]
    assert query(state_url, "SELECT count(*) FROM redress.key_ring WHERE is_current") == [(1,)]
    assert query(state_url, "SELECT count(*) FROM redress.rule_publications") == [(1,)]
    assert len(query(state_url, "SELECT holder FROM redress.key_holders")) == 10


def test_a_host_with_another_deployment_key_is_refused_and_makes_none_of_its_own(tmp_path, state_url):
    secret = deployment_keys(tmp_path / "secret")
    codec.data_converter(host(tmp_path / "first", secret).keys)  # records the deployment's ring
    stranger = deployment_keys(tmp_path / "stranger")  # a host that made its own codec.json
    with pytest.raises(codec.MissingKeys, match="not the deployment's"):
        codec.data_converter(stranger)
    bare = tmp_path / "bare"
    with pytest.raises(codec.MissingKeys, match="no payload keys"):
        codec.data_converter(bare, create_keys=True)  # the store knows keys: a new host must be given them
    assert not (bare / "codec.json").exists()


async def test_a_new_key_encrypts_only_once_every_running_process_holds_it(tmp_path, state_url):
    secret = deployment_keys(tmp_path / "secret")
    running = codec.codec_of(codec.data_converter(host(tmp_path / "old", secret).keys))  # this process: old ring
    first = running.ring.current
    admin = {"REDRESS_STATE_URL": state_url, "REDRESS_PAYLOAD_KEYS": str(secret)}

    code, out, err = await redress(admin, "keys", "rotate", "--json")
    assert code == 0, err
    staged = json.loads(out)
    assert staged["staged"] is True and staged["key"] != first
    new_host = host(tmp_path / "new", secret)  # a process started with the new codec.json still encrypts with the old
    assert codec.codec_of(codec.data_converter(new_host.keys)).ring.current == first

    state = PostgresState.shared_by_process(state_url)
    state.holder = "old-host:1"  # a process elsewhere that was not given the new file
    state._hold(sorted(running.ring.keys))
    code, _, err = await redress(admin, "keys", "activate", staged["key"])
    assert code == 1 and "old-host:1" in err and "do not hold" in err
    state._hold(sorted(codec.KeyRing.load(secret).keys))  # it was given the file and restarted
    code, _, err = await redress(admin, "keys", "activate", staged["key"])
    assert code == 0, err
    assert codec.codec_of(codec.data_converter(new_host.keys)).ring.current == staged["key"]


async def redress(environment: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redress",
        *args,
        cwd=ROOT,
        env={**os.environ, **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_codec_tokens_are_the_deployments_and_a_row_without_the_ring_is_none(tmp_path, state_url):
    secret = deployment_keys(tmp_path / "secret")
    a, b = host(tmp_path / "a", secret), host(tmp_path / "b", secret)
    token = codec_server.issue_token(a.keys, "auditor.kim")
    check_b = codec_server.TokenCheck(b.keys)
    assert check_b.who(token) == "auditor.kim"
    assert not (a.keys / "codec-tokens.json").exists()  # only the hash, and only in the store
    assert codec_server.revoke_token(b.keys, "auditor.kim")
    assert check_b.who(token) is None and codec_server.TokenCheck(a.keys).who(token) is None
    # a row written by someone with database access but without the deployment ring is no token
    forged = "mallory-token"
    query(state_url, "INSERT INTO redress.codec_tokens (name, digest) VALUES (%s, %s)", "mallory", _sha256(forged))
    assert check_b.who(forged) is None


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_a_bad_url_is_refused_without_showing_its_password(monkeypatch, tmp_path):
    for url in ("postgresq://redress:Sup3rSecret@127.0.0.1:1/x", "postgresql://redress:Sup3rSecret@127.0.0.1:1/x"):
        monkeypatch.setenv("REDRESS_STATE_URL", url)
        with pytest.raises(StateProblem) as refused:
            codec.data_converter(deployment_keys(tmp_path / uuid.uuid4().hex))
        assert "Sup3rSecret" not in str(refused.value) and "REDRESS_STATE_URL" in str(refused.value)


def test_an_altered_case_key_is_a_refusal_not_a_crash(tmp_path, state_url):
    converter = codec.codec_of(codec.data_converter(deployment_keys(tmp_path / "secret")))
    converter.subjects.key_for("complaint-ALTERED", create=True)
    query(
        state_url,
        "UPDATE redress.subject_keys SET wrapped = set_byte(wrapped, 20, mod(get_byte(wrapped, 20) + 1, 256)) "
        "WHERE subject = %s",
        "complaint-ALTERED",
    )
    with pytest.raises(codec.KeyProblem, match="altered"):
        converter.subjects.key_for("complaint-ALTERED", create=False)


def test_an_erased_key_is_gone_from_the_tables_files_after_erasure(tmp_path, state_url):
    """Erasure vacuums the key table and asks for a checkpoint: the old row version is in no table page.

    (The WAL still holds it until its segment is recycled, and backups until they expire: that
    part is the operator's: README, "Several workers on several hosts".)
    """
    data_converter = codec.data_converter(deployment_keys(tmp_path / "secret"))
    converter = codec.codec_of(data_converter)
    subjects = [f"complaint-ERASE-{n}" for n in range(20)]
    for subject in subjects:
        converter.subjects.key_for(subject, create=True)
    (wrapped,) = query(state_url, "SELECT wrapped FROM redress.subject_keys WHERE subject = %s", subjects[7])[0]
    (relation,) = query(state_url, "SELECT pg_relation_filepath('redress.subject_keys')")[0]
    (folder,) = query(state_url, "SHOW data_directory")[0]
    table = Path(folder) / relation
    query(state_url, "CHECKPOINT")
    assert bytes(wrapped) in table.read_bytes()

    codec.erase_subjects(data_converter, [subjects[7]])
    assert bytes(wrapped) not in table.read_bytes()
    with pytest.raises(codec.PersonalDataErased):
        converter.subjects.key_for(subjects[7], create=False)
    assert converter.subjects.key_for(subjects[8], create=False) is not None


async def test_a_ring_injected_by_a_secret_store_is_used_and_never_written(tmp_path, state_url, monkeypatch):
    secret = deployment_keys(tmp_path / "secret")
    codec.data_converter(secret)  # the deployment's ring is recorded
    bare = tmp_path / "pod"  # a pod with no key file: the ring arrives in its environment
    monkeypatch.setenv("REDRESS_PAYLOAD_KEY_RING", codec.KeyRing.path(secret).read_text())
    ring = codec.codec_of(codec.data_converter(bare, create_keys=True)).ring
    assert ring.keys == codec.KeyRing.load(secret).keys
    assert not bare.exists()
    code, _, err = await redress({"REDRESS_PAYLOAD_KEYS": str(bare)}, "keys", "rotate")
    assert code != 0 and "REDRESS_PAYLOAD_KEY_RING" in err
    monkeypatch.setenv("REDRESS_PAYLOAD_KEY_RING", '{"current": "x", "keys": {"x": "not base64!"}}')
    with pytest.raises(codec.MissingKeys, match="not a key ring"):
        codec.data_converter(bare)


async def test_while_the_database_is_gone_the_codec_server_says_so_and_opens_nothing(tmp_path, monkeypatch):
    with postgres_server() as url:  # a server of its own: this test stops it
        monkeypatch.setenv("REDRESS_STATE_URL", fresh_database(url.rsplit("/", 1)[0]))
        keys = deployment_keys(tmp_path / "secret")
        sealed = (
            codec.codec_of(codec.data_converter(keys))
            .bound(workflow_id_for("GONE-1"))
            .encode_one(Payload(metadata={"encoding": b"json/plain"}, data=b'{"name": "Ingrid"}'))
        )
        body = json_format.MessageToJson(Payloads(payloads=[sealed]))
        token = codec_server.issue_token(keys, "auditor.kim")
        try:
            with codec_server.CodecServer(keys, port=0) as server:
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                    headers = {"Authorization": f"Bearer {token}"}
                    assert (await http.post("/decode", content=body, headers=headers)).status_code == 200
                    stop_server(url)
                    gone = await http.post("/decode", content=body, headers=headers)
                    assert gone.status_code == 503, gone.text
                    assert "did not answer" in gone.json()["error"] and "Ingrid" not in gone.text
        finally:
            PostgresState.close_all()


def test_only_publications_sealed_by_a_holder_of_the_deployment_ring_are_followed(tmp_path, state_url):
    """Write access to the database is not enough to change the rules (and so the approver directory) workers use."""
    secret = deployment_keys(tmp_path / "secret")
    codec.data_converter(host(tmp_path / "a", secret).keys)  # this process holds the ring: it seals and checks
    rules = write_rules(tmp_path / "rules")
    a = RuleStore(rules, tmp_path / "cache-a", check_seconds=0, shared=PostgresState.shared_by_process(state_url))
    v1 = a.current.version
    tiers = rules / "tiers.yaml"
    tiers.write_text(tiers.read_text().replace("first_response: 20s", "first_response: 21s"))
    v2 = a.latest().version
    assert v2 != v1 and newest_rules(state_url) == v2

    # someone with database access: a version of their own (a raised limit) published as the newest...
    evil = {p.name: p.read_bytes() for p in rules.iterdir() if p.is_file()}
    evil["approval.yaml"] = evil["approval.yaml"].replace(b"limits: {CNY: 200,", b"limits: {CNY: 999999,")
    version = version_of(list(evil.items()))
    query(state_url, "INSERT INTO redress.rule_versions (version, sha256, seal) VALUES (%s, %s, %s)", version, "0", "0")
    for name, content in evil.items():
        query(state_url, "INSERT INTO redress.rule_files VALUES (%s, %s, %s)", version, name, content)
    for hours in range(60):  # more rows than a page of them, all dated ahead of every real one
        query(
            state_url,
            "INSERT INTO redress.rule_publications (version, published_at, published_by, seal) "
            "VALUES (%s, now() + %s * interval '1 hour', 'mallory', %s)",
            version,
            hours + 1,
            "0" * 64,
        )
    # ...and v1's sealed publication copied as a new row, to roll the deployment back
    query(
        state_url,
        "INSERT INTO redress.rule_publications (version, published_at, published_by, seal) "
        "SELECT version, published_at, 'mallory', seal FROM redress.rule_publications WHERE version = %s",
        v1,
    )
    b = RuleStore(
        write_rules(tmp_path / "rules-b"),
        tmp_path / "cache-b",
        check_seconds=0,
        shared=PostgresState.shared_by_process(state_url),
    )
    assert b.latest().version == v2  # the newest sealed publication, whatever the rows say
    assert a.latest().version == v2

    # deleting v2's publication does not roll back a process that has seen it
    query(state_url, "DELETE FROM redress.rule_publications WHERE version = %s", v2)
    assert a.latest().version == v2 and b.latest().version == v2

    # v1's files altered in place (same 12-digit name): the sealed full digest no longer matches, nothing loads
    query(state_url, "UPDATE redress.rule_files SET content = content || '#' WHERE version = %s", v1)
    fresh = RuleStore(
        write_rules(tmp_path / "rules-c", first_response="30s"),  # a host that never had v1's files
        tmp_path / "cache-c",
        shared=PostgresState.shared_by_process(state_url),
    )
    with pytest.raises(StateUnavailable, match="not in the shared state"):
        fresh.get(v1)  # a case pinned to it waits (its activity is retried) rather than deciding with other rules


def test_case_key_generations_on_postgresql(state_url, tmp_path):
    """A contact correction's rekey and shredding (tests/test_contact_correction.py) on the shared store."""
    from tests.test_contact_correction import key_generations_hold

    ring = codec.KeyRing.rotate(tmp_path, first=True)
    key_generations_hold(codec.SubjectKeys(PostgresState.shared_by_process(state_url), ring), ring)
