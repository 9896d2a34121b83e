"""The console: pages served with 1,000 open cases, and an approver's click to the payment order at the peer.

`python bench/console.py [--open N] [--pages P] [--clicks C] [--load-rate R] [--json]`

On the embedded dev server (SQLite), with the worker and the console in this
process (as `make run` runs them), N open cases (CFPB texts) of which C+ await a
team lead's approval. Pages: P requests each of the inbox and of a case page,
one after another, by a signed-in team lead (the console's trusted-header mode,
so no browser is in the way). Clicks: C approvals as the page makes them
(options, the passkey's assertion from a software authenticator, finish), each
timed from the click (the options request) until the payment peer receives the
order, while R new complaints a second arrive and are carried to close in the
background (the approval-latency bench's load).
Goals: pages p95 < 300 ms; click to payment p95 < 1 s under that load.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from activities.complaint_activities import ComplaintActivities
from activities.rules.store import RuleStore
from activities.settings import Settings
from bench.approval_latency import LOAD_RATE, percentile, with_load
from bench.throughput import all_acknowledged, cfpb_complaints
from redress import codec
from redress import search_attributes as sa
from redress.client import RedressClient, connect
from redress.console import ConsoleServer
from redress.console import Settings as ConsoleSettings
from redress.contract import RemedyProposal, ResponseRecord
from tests.helpers.authenticator import SoftAuthenticator, with_passkey
from tests.helpers.browser import allow_origin
from tests.helpers.peer import Peer
from tests.helpers.processes import free_port
from tests.helpers.rules import write_rules
from worker import build_worker, temporal_binary

PAGE_GOAL_P95_MS = 300.0
CLICK_GOAL_P95_MS = 1000.0
HEADER = "X-Bench-User"
APPROVER = "wang.fang"
CONCURRENCY = 20


async def open_cases(redress: RedressClient, batch: list[dict], awaiting: int) -> list[str]:
    """Submit every complaint and wait until all are acknowledged (the pages are timed on a settled engine);
    then the first `awaiting` get a response and a 299 CNY proposal for a team lead."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def submit(data: dict) -> str:
        async with gate:
            await redress.submit(data)  # answers the workflow id
            return data["complaint_id"]

    async def awaiting_approval(cid: str) -> None:
        async with gate:
            await redress.record_response(cid, ResponseRecord(agent="li.na"))
            proposal = RemedyProposal(
                kind="refund", amount=Decimal("299"), currency="CNY", reason="late", proposed_by="li.na"
            )
            await redress.propose_remedy(cid, proposal)

    cids = await asyncio.gather(*(submit(d) for d in batch))
    await all_acknowledged(redress.client, len(batch))
    await asyncio.gather(*(awaiting_approval(cid) for cid in cids[:awaiting]))
    return cids


async def page_times(http: httpx.AsyncClient, path: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        answer = await http.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def click(http: httpx.AsyncClient, device: SoftAuthenticator, origin: str, cid: str, peer: Peer) -> float:
    """One approval as the case page makes it; milliseconds from the click to the order at the peer."""
    page = (await http.get(f"/cases/{cid}")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    headers = {"X-CSRF-Token": csrf}
    started = time.perf_counter()
    options = (
        await http.post(f"/cases/{cid}/sign/options", json={"action": "approve", "proposal_id": "P1"}, headers=headers)
    ).json()
    terms = json.dumps(options["terms"], sort_keys=True, separators=(",", ":")).encode()
    assertion = device.sign(terms, origin=origin)
    credential = {
        "id": assertion.credential_id,
        "response": {
            "authenticatorData": assertion.authenticator_data,
            "clientDataJSON": assertion.client_data_json,
            "signature": assertion.signature,
        },
    }
    done = await http.post(
        f"/cases/{cid}/sign/finish", json={"ceremony": options["ceremony"], "credential": credential}, headers=headers
    )
    assert done.json().get("ok"), done.text
    while not (orders := peer.acted("/pay", complaint_id=cid)):
        await asyncio.sleep(0.005)
    return (orders[0].at - started) * 1000


def summary(values: list[float]) -> dict:
    return {
        "samples": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
        "max_ms": round(max(values), 1),
    }


async def measure(open_count: int, pages: int, clicks: int, rate: float) -> dict:
    device = SoftAuthenticator()
    with tempfile.TemporaryDirectory() as tmp, Peer() as peer:
        os.environ["REDRESS_PAYLOAD_KEYS"] = str(Path(tmp) / "keys")  # the console's client: the same keys
        async with await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            data_converter=codec.data_converter(Path(tmp) / "keys", create_keys=True),
            search_attributes=sa.ALL,
            dev_server_database_filename=str(Path(tmp) / "console.db"),
        ) as env:
            rules = write_rules(Path(tmp) / "rules", first_response="1h", resolution="4h", survey_window="1h")
            with_passkey(rules, APPROVER, device)
            port = free_port()
            origin = f"http://localhost:{port}"
            allow_origin(rules, origin)
            settings = Settings(
                rules_dir=rules,
                data_dir=Path(tmp) / "data",
                notify_url=f"{peer.url}/notify",
                payment_url=f"{peer.url}/pay",
            )
            feed = itertools.chain.from_iterable(cfpb_complaints(1000) for _ in itertools.count())
            async with httpx.AsyncClient() as http_out:
                activities = ComplaintActivities(settings, http_out, RuleStore(settings.rules_dir), env.client)
                async with build_worker(env.client, activities, task_queue="console"):
                    redress = RedressClient(env.client, task_queue="console")
                    awaiting = clicks + 5
                    cids = await open_cases(redress, [next(feed) for _ in range(open_count)], awaiting)

                    address = env.client.service_client.config.target_host

                    async def own_client() -> RedressClient:  # on the console's loop, as `make run` connects it
                        return RedressClient(await connect(address), task_queue="console")

                    console = ConsoleServer(own_client, ConsoleSettings(rules=rules, trusted_header=HEADER), port=port)
                    with console:
                        async with httpx.AsyncClient(base_url=origin, headers={HEADER: APPROVER}, timeout=30) as http:
                            await page_times(http, "/inbox", 3)  # warm up
                            inbox = await page_times(http, "/inbox", pages)
                            case = await page_times(http, f"/cases/{cids[-1]}", pages)

                            async def clicking() -> list[float]:
                                return [await click(http, device, origin, cid, peer) for cid in cids[5:awaiting]]

                            await click(http, device, origin, cids[0], peer)  # warm up
                            latencies, closing = await with_load(redress, rate, feed, clicking)
    results: dict[str, Any] = {
        "open_cases": open_count,
        "inbox": summary(inbox),
        "case_page": summary(case),
        "click_to_payment": summary(latencies),
        "background_arrivals_per_s": rate,
        "background_cases_per_s": round(closing, 2),
        "page_goal_p95_ms": PAGE_GOAL_P95_MS,
        "click_goal_p95_ms": CLICK_GOAL_P95_MS,
    }
    results["met"] = (
        results["inbox"]["p95_ms"] < PAGE_GOAL_P95_MS
        and results["case_page"]["p95_ms"] < PAGE_GOAL_P95_MS
        and results["click_to_payment"]["p95_ms"] < CLICK_GOAL_P95_MS
    )
    return results


def main() -> None:
    def option(name: str, default: float) -> float:
        return float(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default

    result = asyncio.run(
        measure(
            int(option("--open", 1000)),
            int(option("--pages", 100)),
            int(option("--clicks", 50)),
            option("--load-rate", LOAD_RATE),
        )
    )
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['open_cases']} open cases")
    for name in ("inbox", "case_page", "click_to_payment"):
        print(f"  {name}: {result[name]}")
    print(f"goals {'met' if result['met'] else 'MISSED'}")


if __name__ == "__main__":
    main()
