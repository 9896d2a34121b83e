"""Throughput of the engine on one machine: `make bench` (or python bench/throughput.py N).

Starts the dev server with a SQLite file (as `make run` does), one worker in
this process, and the outbox (no HTTP peers), with payload encryption on,
then measures:
- intake: N complaints submitted at once until all are acknowledged (triage +
  acknowledgement + search attributes);
- lifecycle: N complaints taken through response, resolve and CSAT to closed;
- report: reading all 2N cases (visibility, plus the result of each closed one)
  and summarizing them, as `redress report` does.
Prints complaints per second and the process's peak RSS. Not a test: numbers
depend on the machine; compare runs on the same one.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.complaint_activities import ComplaintActivities
from activities.rules.store import RuleStore
from activities.settings import Settings
from redress import (
    codec,
    report,
)
from redress import search_attributes as sa
from redress.client import RedressClient
from redress.contract import Feedback, Resolution, ResponseRecord
from tests.helpers import cfpb
from tests.helpers.cases import complaint
from tests.helpers.rules import write_rules
from worker import build_worker, temporal_binary

ROOT = Path(__file__).resolve().parent.parent

# Cases worked at once, as a team of agents would: unbounded, hundreds of updates queue up on the SQLite
# dev server until they time out, which measures the queue rather than the engine.
LIFECYCLE_CONCURRENCY = 50


async def until_stage(redress: RedressClient, cid: str, stage: str) -> None:
    while (await redress.status(cid)).stage.value != stage:
        await asyncio.sleep(0.05)


async def all_acknowledged(client, count: int) -> None:
    """Until visibility shows `count` cases acknowledged (it lags a second or so).

    Not a query per case: a thousand queries every few milliseconds are a load of
    their own, and a query waits behind a case's running workflow task.
    """
    query = "WorkflowType = 'Complaint' AND ComplaintStatus = 'acknowledged'"
    while (await client.count_workflows(query)).count < count:
        await asyncio.sleep(0.5)


async def lifecycle(redress: RedressClient, data: dict) -> None:
    cid = data["complaint_id"]
    await redress.submit(data)
    await until_stage(redress, cid, "acknowledged")
    await redress.record_response(cid, ResponseRecord(agent="li.na"))
    await redress.resolve(cid, Resolution(agent="li.na", summary="done", root_cause="process_gap"))
    await until_stage(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=5))
    await redress.outcome(cid)


def cfpb_complaints(count: int) -> list[dict]:
    """The 268 real CFPB narratives, cycled, as complaints (the input the benchmarks share).

    Each from its own customer about its own order; a product per narrative, so a
    burst does not reach the crisis rule's threshold (20 about one product within
    an hour), which would raise every case and measure a crisis instead.
    """
    texts = [c.text for c in cfpb.load()]
    batch = uuid.uuid4().hex[:6]
    return [
        complaint(
            text=texts[n % len(texts)],
            customer={"id": f"bench-{batch}-{n}", "language": "en"},
            channel="web",
            order={
                "id": f"SO-{batch}-{n}",
                "value": "300.00",
                "currency": "CNY",
                "items": [{"sku": f"SKU-{n % len(texts)}", "quantity": 1}],
            },
        )
        for n in range(count)
    ]


async def measure(count: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        async with await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            data_converter=codec.data_converter(Path(tmp) / "keys", create_keys=True),  # encrypted, as in production
            search_attributes=sa.ALL,
            dev_server_database_filename=str(Path(tmp) / "bench.db"),
        ) as env:
            rules = ROOT / "rules"
            if "--no-desks" in sys.argv:  # the shipped rules without agent desks (to see what routing costs)
                rules = write_rules(Path(tmp) / "rules", tiers_yaml=(ROOT / "rules" / "tiers.yaml").read_text())
            if "--single-case" in sys.argv:  # nor any cross-case workflow (customer record, crisis watch)
                (rules / "across_cases.yaml").unlink()
            settings = Settings(rules_dir=rules, data_dir=Path(tmp))
            async with httpx.AsyncClient() as http:
                activities = ComplaintActivities(settings, http, RuleStore(settings.rules_dir), env.client)
                async with build_worker(env.client, activities, task_queue="bench"):
                    redress = RedressClient(env.client, task_queue="bench")
                    batch = cfpb_complaints(count)
                    started = time.perf_counter()
                    await asyncio.gather(*(redress.submit(d) for d in batch))
                    await all_acknowledged(env.client, count)
                    intake = time.perf_counter() - started

                    started = time.perf_counter()
                    gate = asyncio.Semaphore(LIFECYCLE_CONCURRENCY)

                    async def one(data: dict) -> None:
                        async with gate:
                            await lifecycle(redress, data)

                    again = cfpb_complaints(count)
                    for data in again:
                        data["complaint_id"] = f"L-{data['complaint_id']}"
                        data["customer"]["id"] = f"L-{data['customer']['id']}"
                    await asyncio.gather(*(one(d) for d in again))
                    full = time.perf_counter() - started

                    started = time.perf_counter()
                    records = await report.collect(env.client, task_queue="bench")
                    summary = report.summarize(records)
                    reading = time.perf_counter() - started
    return {
        "complaints": count,
        "intake_seconds": round(intake, 2),
        "intake_per_s": round(count / intake, 1),
        "lifecycle_seconds": round(full, 2),
        "lifecycle_per_s": round(count / full, 1),
        "lifecycle_concurrency": LIFECYCLE_CONCURRENCY,
        "report_cases": len(records),
        "report_closed": summary["volume"]["result"].get("closed", 0),
        "report_per_s": round(len(records) / reading),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    result = asyncio.run(measure(int(args[0]) if args else 200))
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
        return
    print(
        f"intake:    {result['complaints']} complaints acknowledged in {result['intake_seconds']}s "
        f"= {result['intake_per_s']}/s"
    )
    print(
        f"lifecycle: {result['complaints']} complaints closed in {result['lifecycle_seconds']}s "
        f"= {result['lifecycle_per_s']}/s"
    )
    print(
        f"report:    {result['report_cases']} cases ({result['report_closed']} with results fetched) read "
        f"and summarized = {result['report_per_s']} cases/s"
    )
    print(f"peak RSS of client+worker process: {result['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
