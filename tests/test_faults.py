"""Faults survived: the worker killed outright mid-flight, and the dev server restarted on its SQLite file.

The worker is a real subprocess (`redress worker`), killed with SIGKILL while
many cases are being worked, then started again. The payment and notification
services are real HTTP peers on 127.0.0.1 that count every request; each effect
must happen exactly once however often an interrupted activity retried.

Budget: REDRESS_FAULT_CASES (default 24) cases and REDRESS_FAULT_KILLS (default 2)
kills in CI; raise them locally, e.g. REDRESS_FAULT_CASES=300 REDRESS_FAULT_KILLS=6.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import tempfile
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from redress import codec
from redress import search_attributes as sa
from redress.client import RedressClient, Refused
from redress.contract import Feedback, RemedyProposal, Resolution, ResponseRecord
from tests.helpers.cases import complaint, eventually, stage_is
from tests.helpers.hosts import deployment_keys, fresh_database, host, postgres_base, query
from tests.helpers.peer import Peer
from tests.helpers.postgres import binaries
from tests.helpers.processes import ROOT, free_port
from tests.helpers.rules import write_rules
from tests.helpers.serving import data_converter, serving
from worker import temporal_binary

EXPECTED_NOTICES = Counter(["acknowledgement", "progress", "remedy_executed", "survey", "closed"])
LATER = {"acknowledged": ("in_progress",), "in_progress": ("remedy_proposed", "remedy_executed")}  # a retried step
CASES = int(os.environ.get("REDRESS_FAULT_CASES", "24"))
KILLS = int(os.environ.get("REDRESS_FAULT_KILLS", "2"))


async def start_worker(environment: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    handle = log.open("ab")
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redress",
        "worker",
        cwd=ROOT,
        env={**os.environ, **environment},
        stdout=handle,
        stderr=asyncio.subprocess.STDOUT,
    )


async def running(log: Path, process: asyncio.subprocess.Process, since: int) -> None:
    async def ready():
        if process.returncode is not None:
            raise AssertionError(f"worker exited: {log.read_text(errors='replace')[-2000:]}")
        return log.read_text(errors="replace").count('"worker running"') > since

    await eventually(ready, timeout=60)


def person(n: int) -> dict:
    marker = uuid.uuid4().hex[:8]
    return {
        "id": f"fault-{marker}",
        "name": f"Mariko Fault{marker}",
        "phone": f"+81 3 {n:04d} 7777",
        "email": f"mariko.{marker}@example.jp",
        "language": "en",
    }


async def reached(redress: RedressClient, cid: str, stage: str) -> None:
    """Like stage_is, but a query that times out while no worker is alive is asked again."""

    async def check():
        try:
            return (await redress.status(cid)).stage.value in (stage, *LATER.get(stage, ()))
        except RPCError:
            return False

    await eventually(check, timeout=120)


async def as_an_agent_would(redress: RedressClient, cid: str, stage: str, step) -> None:
    """Take a step; if the case refuses it for its stage, look again and retry, as an agent would.

    A query can show progress that a worker made and was killed before reporting:
    the case redoes it on replay and gets there again, but a step taken on what the
    screen showed may be refused in between. (A step sent while the case's workflow
    task is being retried is resent by the client itself, under the same update id.)
    """
    for _ in range(10):
        try:
            await step()
            return
        except Refused as refused:
            if "the case is" not in refused.reason:
                raise
            last = refused
        await reached(redress, cid, stage)
    raise AssertionError(f"{cid}: refused ten times: {last}")


async def work_case(redress: RedressClient, data: dict) -> None:
    try:
        await _work_case(redress, data)
    except Exception:
        history = await redress.handle(data["complaint_id"]).fetch_history()
        dump = Path(tempfile.gettempdir()) / f"redress-fault-{data['complaint_id']}.json"
        dump.write_text(history.to_json(), encoding="utf-8")
        print(f"--- {data['complaint_id']} failed; its history is in {dump}")
        raise


async def _work_case(redress: RedressClient, data: dict) -> None:
    """One case from submission to close, as agents and the customer would drive it."""
    cid = data["complaint_id"]
    await redress.submit(data)
    await reached(redress, cid, "acknowledged")
    await as_an_agent_would(
        redress,
        cid,
        "acknowledged",
        lambda: redress.record_response(cid, ResponseRecord(agent="li.na", message="We are on it.")),
    )
    await as_an_agent_would(
        redress,
        cid,
        "in_progress",
        lambda: redress.propose_remedy(
            cid,
            RemedyProposal(
                kind="refund", amount=Decimal("30"), currency="CNY", reason="double charge", proposed_by="li.na"
            ),
        ),
    )
    await reached(redress, cid, "remedy_executed")
    await as_an_agent_would(
        redress,
        cid,
        "remedy_executed",
        lambda: redress.resolve(cid, Resolution(agent="li.na", summary="refunded", root_cause="billing_error")),
    )
    await reached(redress, cid, "follow_up")
    await as_an_agent_would(redress, cid, "follow_up", lambda: redress.customer_feedback(cid, Feedback(score=5)))


async def test_sigkilled_workers_lose_nothing_and_do_nothing_twice(env, tmp_path):
    await survive_kills(env, tmp_path, {}, env.client)


@pytest.mark.skipif(binaries() is None, reason="needs Debian's postgresql (.ci/run installs it)")
async def test_with_the_shared_state_in_postgresql_too(env, tmp_path, monkeypatch):
    """The same, with REDRESS_STATE_URL: keys, rule versions and key ring in a real PostgreSQL."""
    with postgres_base() as base:
        url = fresh_database(base)
        monkeypatch.setenv("REDRESS_STATE_URL", url)
        secret = deployment_keys(tmp_path / "secret")
        worker_host, desk = host(tmp_path / "worker-host", secret), host(tmp_path / "desk", secret)
        config = env.client.config()
        config["data_converter"] = codec.data_converter(desk.keys)
        await survive_kills(
            env, tmp_path, {"REDRESS_STATE_URL": url, "REDRESS_PAYLOAD_KEYS": str(worker_host.keys)}, Client(**config)
        )
        assert query(url, "SELECT count(*) FROM redress.subject_keys")[0][0] >= CASES


async def survive_kills(env, tmp_path: Path, extra: dict[str, str], client: Client) -> None:
    queue = f"redress-faults-{uuid.uuid4().hex[:6]}"
    rules = write_rules(tmp_path / "rules", first_response="10m", resolution="20m", survey_window="10m")
    with Peer() as peer:
        environment = {
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "REDRESS_TASK_QUEUE": queue,
            "REDRESS_RULES": str(rules),
            "REDRESS_DATA": str(tmp_path / "data"),
            "REDRESS_NOTIFY_URL": f"{peer.url}/notify",
            "REDRESS_PAYMENT_URL": f"{peer.url}/pay",
            "REDRESS_LOG_FORMAT": "json",
            "REDRESS_LOG_LEVEL": "DEBUG",
            **extra,
        }
        logs = [tmp_path / f"worker-{n}.log" for n in range(KILLS + 1)]
        worker = await start_worker(environment, logs[0])
        await running(logs[0], worker, 0)
        redress = RedressClient(client, task_queue=queue)
        people = [person(n) for n in range(CASES)]
        cases = [
            complaint(customer=people[n], text=f"Charged twice for order {n}, refund please.") for n in range(CASES)
        ]
        work = asyncio.gather(*(work_case(redress, data) for data in cases))
        try:
            for n in range(1, KILLS + 1):
                # kill once some cases are part-way: activities and updates are in flight
                await eventually(functools.partial(_some_paid, peer, n * CASES // (KILLS + 2)), timeout=120)
                worker.send_signal(signal.SIGKILL)
                await worker.wait()
                worker = await start_worker(environment, logs[n])
                await running(logs[n], worker, 0)
            await asyncio.wait_for(work, timeout=300)
            outcomes = [await redress.outcome(data["complaint_id"]) for data in cases]
        finally:
            if worker.returncode is None:
                worker.send_signal(signal.SIGTERM)
                await asyncio.wait_for(worker.wait(), timeout=30)

        assert [o.stage.value for o in outcomes] == ["closed"] * CASES
        for data in cases:
            cid = data["complaint_id"]
            paid = peer.acted("/pay", complaint_id=cid)
            assert len(paid) == 1, (
                f"{cid} paid {len(paid)} times: {[r.key for r in peer.received('/pay', complaint_id=cid)]}"
            )

            async def notices_sent(cid=cid, expected=EXPECTED_NOTICES):
                return Counter(r.body["template"] for r in peer.acted("/notify", complaint_id=cid)) == expected

            try:
                await eventually(notices_sent, timeout=10)
            except AssertionError:
                sent = [(r.body["template"], r.key) for r in peer.received("/notify", complaint_id=cid)]
                acted = Counter(r.body["template"] for r in peer.acted("/notify", complaint_id=cid))
                raise AssertionError(f"{cid}: notices acted {acted}, requests received {sent}") from None
        # every request that reached a peer again after a kill carried the key of the first one
        repeats = sum(n - 1 for n in Counter(r.key for r in peer.requests).values() if n > 1)
        assert all(r.key for r in peer.requests)
        print(f"{CASES} cases, {KILLS} kills: {len(peer.requests)} requests, {repeats} repeated by retries")

    text = "".join(log.read_text(errors="replace") for log in logs)
    assert all(f'"complaint_id": "{data["complaint_id"]}"' in text for data in cases)
    for someone in people:  # personal data never logged, even at DEBUG
        for secret in (someone["name"], someone["phone"], someone["email"]):
            assert secret not in text


async def _some_paid(peer: Peer, at_least: int) -> bool:
    return bool(peer.effects) and len([r for r in peer.effect_log if r.path == "/pay"]) >= max(1, at_least)


async def test_open_cases_and_their_timers_survive_a_dev_server_restart(tmp_path, peer):
    """The embedded server's SQLite file keeps cases and pending timers across a server (and worker) restart."""
    database = tmp_path / "temporal.db"
    port = free_port()
    rules = write_rules(tmp_path / "rules", first_response="6s", resolution="1h")

    async def server() -> WorkflowEnvironment:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            data_converter=data_converter(),
            search_attributes=sa.ALL,
            dev_server_database_filename=str(database),
            port=port,
        )

    first = await server()
    async with (
        first,
        serving(first.client, rules, tmp_path / "data", peer.url, task_queue="redress-restart") as redress,
    ):
        data = complaint()
        cid = data["complaint_id"]
        await redress.submit(data)
        status = await stage_is(redress, cid, "acknowledged")
        due = status.deadlines["first_response"].due
    # server and worker are down; the first-response deadline passes meanwhile
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 1)
    second = await server()
    async with second:
        client: Client = second.client
        async with serving(client, rules, tmp_path / "data", peer.url, task_queue="redress-restart") as redress:
            status = await eventually(lambda: _breached(redress, cid), timeout=30)
            assert status.deadlines["first_response"].breached_at >= due - timedelta(seconds=1)
            assert (await redress.status(cid)).stage.value in ("acknowledged", "in_progress")
            notices = [
                r for r in peer.acted("/notify", complaint_id=cid) if r.body.get("template") == "acknowledgement"
            ]
            assert len(notices) == 1  # acknowledged once, before the restart; not again after it


async def _breached(redress: RedressClient, cid: str):
    status = await redress.status(cid)
    deadline = status.deadlines.get("first_response")
    return status if deadline and deadline.breached_at else None
