"""Lifecycle throughput against Temporal's own floor, side by side in one run.

`python bench/floor.py [N] [--rounds R] [--json]`

"Ours": N complaints (the CFPB narratives, each from its own customer about
its own product) carried from submission to close on the auto-remedied path
(answer, a 30 CNY refund within the automatic limit, resolve, CSAT 5), with the
real worker: rules, pydantic models, encryption, structured logs, the outbox.

"Bare" (bench/bare_workflow.py): workflows with empty bodies that make every
Temporal call ours makes, in the same order: local activities, timer, updates
and search-attribute upserts, and the messages to
the customer's record and the product's crisis watch. What is left is what the
goal is about: our rules, models, logging and encryption. (Until 2026-11-23 the
bare side had no search attributes, no patch and no other workflows: it
measured those Temporal calls as our overhead.)

Each round also reports CPU milliseconds per case, of this process (driver,
client and worker) and of the dev server, for each side, and the history length
of 20 of its cases: the two sides must cost the server the same events.

Both run on the embedded dev server with its SQLite file (what `make run` uses),
driven the same way with the same concurrency, one after the other in each
round, taking turns going first (the server's database grows as cases close)
so that the machine's noise falls on both. The figure is ours / bare per round,
and its median. Goal: at least 0.85.

`--postgres`: ours with the shared state in a real PostgreSQL (REDRESS_STATE_URL; Debian's
binaries, started here as the tests start it): every payload's case key is looked up there.
The PostgreSQL server's CPU is not in the server column (it is not a child of this process).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.complaint_activities import ComplaintActivities
from activities.rules.store import RuleStore
from activities.settings import Settings
from bench.bare_workflow import BareActivities, BareComplaint, BareRecord, BareWatch
from bench.throughput import cfpb_complaints
from redress import codec
from redress import search_attributes as sa
from redress.client import RedressClient
from redress.contract import Feedback, RemedyProposal, Resolution, ResponseRecord
from tests.helpers.rules import write_rules
from worker import build_worker, temporal_binary

ROOT = Path(__file__).resolve().parent.parent

CONCURRENCY = 50  # cases worked at once, as in bench/throughput.py
GOAL = 0.85
ONLY = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
POSTGRES = "--postgres" in sys.argv


async def until(query, stage: str) -> None:
    while (await query()) != stage:
        await asyncio.sleep(0.05)


async def first_task_done(handle) -> None:
    """Wait for a case's first workflow task without a query.

    A query that arrives while that task runs makes the server run one more (3 events),
    on either side, at random: it would be noise in the comparison.
    """
    while True:
        raw = (await handle.describe()).raw_description
        if raw.workflow_execution_info.history_length > 3 and not raw.HasField("pending_workflow_task"):
            return
        await asyncio.sleep(0.05)


async def ours(redress: RedressClient, data: dict) -> None:
    cid = data["complaint_id"]

    async def stage() -> str:
        return (await redress.status(cid)).stage.value

    await redress.submit(data)
    await first_task_done(redress.handle(cid))
    await until(stage, "acknowledged")
    await redress.record_response(cid, ResponseRecord(agent="li.na", message="on it"))
    await redress.propose_remedy(
        cid,
        RemedyProposal(
            kind="refund", amount=Decimal("30"), currency="CNY", reason="double charge", proposed_by="li.na"
        ),
    )
    await until(stage, "remedy_executed")
    await redress.resolve(cid, Resolution(agent="li.na", summary="done", root_cause="process_gap"))
    await until(stage, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=5))
    await redress.outcome(cid)


async def bare(client: Client, queue: str, data: dict) -> None:
    keys = {"customer": data["customer"]["id"], "sku": data["order"]["items"][0]["sku"]}
    handle = await client.start_workflow(BareComplaint.run, keys, id=f"bare-{data['complaint_id']}", task_queue=queue)

    async def stage() -> str:
        return (await handle.query(BareComplaint.status))["stage"]

    await first_task_done(handle)
    await until(stage, "acknowledged")
    await handle.execute_update(BareComplaint.record_response, {"agent": "li.na"})
    await handle.execute_update(BareComplaint.propose_remedy, {"kind": "refund"})
    await until(stage, "remedy_executed")
    await handle.execute_update(BareComplaint.resolve, {"agent": "li.na"})
    await until(stage, "follow_up")
    await handle.execute_update(BareComplaint.customer_feedback, {"score": 5})
    await handle.result()


def cpu_seconds() -> tuple[float, float]:
    """CPU used so far by this process (client and worker) and by its children (the dev server)."""
    ticks = os.sysconf("SC_CLK_TCK")
    server = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():  # ppid
            server += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return time.process_time(), server


async def timed(count: int, one, cpu: dict | None = None, history=None) -> float:
    """Cases per second; with `cpu`, also CPU per case and, given `history` (data -> its history), events per case."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def gated(data: dict) -> None:
        async with gate:
            await one(data)

    batch = cfpb_complaints(count)
    started, (python, server) = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*(gated(d) for d in batch))
    elapsed = time.perf_counter() - started
    if cpu is not None:
        python_after, server_after = cpu_seconds()
        cpu["python_ms"] = round((python_after - python) * 1000 / count, 1)
        cpu["server_ms"] = round((server_after - server) * 1000 / count, 1)
        if history is not None:  # after the clock: the two sides must cost the server the same number of events
            cpu["events"] = statistics.median([len((await history(d)).events) for d in batch[:20]])
    return count / elapsed


async def measure(count: int, rounds: int) -> dict:
    if not POSTGRES:
        return await measure_here(count, rounds)
    from tests.helpers.postgres import postgres_server

    with postgres_server() as url:
        os.environ["REDRESS_STATE_URL"] = url.rsplit("/", 1)[0] + "/redress_bench"
        try:
            return {**await measure_here(count, rounds), "state": "postgresql"}
        finally:
            from redress.state_postgres import PostgresState

            PostgresState.close_all()


async def measure_here(count: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        converter = codec.data_converter(Path(tmp) / "keys", create_keys=True)
        async with await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            data_converter=converter,
            search_attributes=sa.ALL,
            dev_server_database_filename=str(Path(tmp) / "floor.db"),
        ) as env:
            plain = await Client.connect(env.client.service_client.config.target_host, namespace=env.client.namespace)
            rules = write_rules(Path(tmp) / "rules", first_response="10m", resolution="1h", survey_window="1h")
            settings = Settings(rules_dir=rules, data_dir=Path(tmp) / "data")
            async with httpx.AsyncClient() as http:
                activities = ComplaintActivities(settings, http, RuleStore(settings.rules_dir), env.client)
                bare_activities = BareActivities(plain, records_queue="floor-bare-records")
                async with (
                    build_worker(env.client, activities, task_queue="floor-ours"),
                    Worker(plain, task_queue="floor-bare", workflows=[BareComplaint], activities=bare_activities.all()),
                    Worker(plain, task_queue="floor-bare-records", workflows=[BareRecord, BareWatch]),
                ):
                    redress = RedressClient(env.client, task_queue="floor-ours")
                    await timed(10, lambda d: ours(redress, d))  # warm up both
                    await timed(10, lambda d: bare(plain, "floor-bare", d))
                    if ONLY:  # profiling one side: py-spy record -- python bench/floor.py N --only ours
                        cpu: dict = {}
                        per_s = (
                            await timed(count, lambda d: ours(redress, d), cpu)
                            if ONLY == "ours"
                            else await timed(count, lambda d: bare(plain, "floor-bare", d), cpu)
                        )
                        return {"only": ONLY, "per_s": round(per_s, 2), "cpu": cpu}
                    runs: list[dict[str, Any]] = []
                    ours_side = (
                        "ours",
                        lambda d: ours(redress, d),
                        lambda d: redress.handle(d["complaint_id"]).fetch_history(),
                    )
                    bare_side = (
                        "bare",
                        lambda d: bare(plain, "floor-bare", d),
                        lambda d: plain.get_workflow_handle(f"bare-{d['complaint_id']}").fetch_history(),
                    )
                    for round_ in range(rounds):
                        # the server's database grows as cases close: the side that runs second works on a
                        # bigger one, so the two take turns going first
                        order = (ours_side, bare_side) if round_ % 2 == 0 else (bare_side, ours_side)
                        rates: dict[str, float] = {}
                        cpu_of: dict[str, dict[str, float]] = {}
                        for name, one, history in order:
                            cpu_of[name] = {}
                            rates[name] = await timed(count, one, cpu_of[name], history)
                        runs.append(
                            {
                                "ours_per_s": round(rates["ours"], 2),
                                "bare_per_s": round(rates["bare"], 2),
                                "ratio": round(rates["ours"] / rates["bare"], 3),
                                "ours_cpu": cpu_of["ours"],
                                "bare_cpu": cpu_of["bare"],
                                "first": order[0][0],
                            }
                        )
    ratio = statistics.median(r["ratio"] for r in runs)
    return {
        "complaints_per_round": count,
        "concurrency": CONCURRENCY,
        "rounds": runs,
        "median_ratio": round(ratio, 3),
        "goal": GOAL,
        "met": ratio >= GOAL,
        "median_ours_per_s": statistics.median(r["ours_per_s"] for r in runs),
        "median_bare_per_s": statistics.median(r["bare_per_s"] for r in runs),
    }


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 200
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    result = asyncio.run(measure(count, rounds))
    if "--json" in sys.argv or ONLY:
        print(json.dumps(result, indent=2))
        return
    for n, run in enumerate(result["rounds"], 1):
        print(
            f"round {n}: ours {run['ours_per_s']}/s, bare {run['bare_per_s']}/s, ratio {run['ratio']}; "
            f"CPU ms per case, python+server: ours {run['ours_cpu']['python_ms']}+{run['ours_cpu']['server_ms']}, "
            f"bare {run['bare_cpu']['python_ms']}+{run['bare_cpu']['server_ms']}; "
            f"events per case: ours {run['ours_cpu']['events']}, bare {run['bare_cpu']['events']}"
        )
    print(f"median ratio {result['median_ratio']} (goal >= {GOAL}: {'met' if result['met'] else 'MISSED'})")


if __name__ == "__main__":
    main()
