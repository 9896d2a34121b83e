"""Open complaints held at once: worker memory, database size, and how long their timers take to fire.

`python bench/open_complaints.py [N] [--hold-minutes M] [--json]`

Runs `worker.py` as its own process in embedded mode (the dev server with its
SQLite file, as `make run` does), so its resident memory is the worker's alone.
Submits N complaints (CFPB texts, cycled), all received at the same instant T0
with a first-response deadline of M minutes, so every case holds a pending
timer due at T0 + M. Measures:
- the worker's RSS once all N are acknowledged and open (and its peak);
- the server's database size (SQLite file and its write-ahead log);
- from T0 + M, how long until every case has recorded its breach (Breached = true
  in visibility), the case's timer firing and its escalation running.
Goal: worker RSS under 500 MB with 10,000 open. M must leave time to submit all N
(about N / 15 s on this machine); a case submitted late breaches at once, which
the result shows as `submitted_after_due`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client

from bench.throughput import cfpb_complaints
from redress import codec
from redress.client import RedressClient
from redress.contract import TASK_QUEUE
from tests.helpers.processes import free_port
from tests.helpers.rules import write_rules

ROOT = Path(__file__).resolve().parent.parent

GOAL_RSS_MB = 500.0
SUBMIT_CONCURRENCY = 50


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def database_mb(data: Path) -> float:
    return sum(p.stat().st_size for p in data.glob("temporal.db*")) / 1024 / 1024


async def connect(port: int, keys: Path, worker: subprocess.Popen) -> Client:
    for _ in range(300):
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}")
        try:
            return await Client.connect(f"localhost:{port}", data_converter=codec.data_converter(keys))
        except (RuntimeError, codec.MissingKeys):  # the server, or the worker's first keys, not there yet
            await asyncio.sleep(0.2)
    raise SystemExit("the embedded server did not come up")


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def measure(total: int, hold: timedelta) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        rules = write_rules(
            tmp_path / "rules", first_response=f"{int(hold.total_seconds())}s", resolution="24h", survey_window="1h"
        )
        port = free_port()
        env = {
            **os.environ,
            "REDRESS_RULES": str(rules),
            "REDRESS_DATA": str(tmp_path / "data"),
            "REDRESS_PAYLOAD_KEYS": str(tmp_path / "keys"),
            "REDRESS_DEV_PORT": str(port),
            "REDRESS_UI_PORT": str(free_port()),
            "REDRESS_CODEC_PORT": "0",
            "REDRESS_LOG_LEVEL": "WARNING",
        }
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            client = await connect(port, tmp_path / "keys", worker)
            redress = RedressClient(client, task_queue=TASK_QUEUE)
            idle_rss = rss_mb(worker.pid)[0]
            t0 = datetime.now(UTC).replace(microsecond=0)
            due = t0 + hold
            batch = cfpb_complaints(total)
            for data in batch:
                data["received_at"] = t0.isoformat()
            gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)

            async def submit(data: dict) -> None:
                async with gate:
                    await redress.submit(data)

            started = time.perf_counter()
            await asyncio.gather(*(submit(d) for d in batch))
            submitted = time.perf_counter() - started
            late = max(0.0, (datetime.now(UTC) - due).total_seconds())
            base = "WorkflowType = 'Complaint' AND ExecutionStatus = 'Running'"
            while await count(client, base + " AND ComplaintStatus = 'acknowledged'") < total:
                if datetime.now(UTC) > due:
                    break
                await asyncio.sleep(1)
            acknowledged = time.perf_counter() - started
            holding_rss, _ = rss_mb(worker.pid)
            holding_db = database_mb(tmp_path / "data")
            wait = (due - datetime.now(UTC)).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            fire_started = time.perf_counter()
            while (breached := await count(client, base + " AND Breached = true")) < total:
                await asyncio.sleep(1)
                if time.perf_counter() - fire_started > 3600:
                    break
            all_fired = time.perf_counter() - fire_started
            final_rss, peak_rss = rss_mb(worker.pid)
            return {
                "complaints": total,
                "hold_seconds": hold.total_seconds(),
                "submit_seconds": round(submitted, 1),
                "submit_per_s": round(total / submitted, 1),
                "all_acknowledged_seconds": round(acknowledged, 1),
                "submitted_after_due_seconds": round(late, 1),
                "worker_rss_idle_mb": round(idle_rss, 1),
                "worker_rss_holding_mb": round(holding_rss, 1),
                "worker_rss_peak_mb": round(peak_rss, 1),
                "worker_rss_after_firing_mb": round(final_rss, 1),
                "database_holding_mb": round(holding_db, 1),
                "database_after_firing_mb": round(database_mb(tmp_path / "data"), 1),
                "breached": breached,
                "seconds_until_all_fired": round(all_fired, 1),
                "goal_rss_mb": GOAL_RSS_MB,
                "met": peak_rss < GOAL_RSS_MB,
            }
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)


def main() -> None:
    minutes = float(sys.argv[sys.argv.index("--hold-minutes") + 1]) if "--hold-minutes" in sys.argv else 20.0
    total = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10_000
    result = asyncio.run(measure(total, timedelta(minutes=minutes)))
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
