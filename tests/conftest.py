"""Shared fixtures: one real Temporal dev server per session, a real HTTP peer, workers on fresh task queues.

Nothing here mocks Temporal or HTTP. Deadlines are seconds long: the shipped
rule set is copied with a tiers.yaml of second-long deadlines.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.complaint_activities import ComplaintActivities
from activities.rules.store import RuleStore
from activities.settings import Settings
from client import RedressClient
from tests.peer import Peer
from worker import build_worker, temporal_binary
from workflows import search_attributes as sa
from workflows import signatures

ROOT = Path(__file__).resolve().parent.parent

# One set of payload keys per test session, shared with the worker and CLI subprocesses through the environment.
os.environ["REDRESS_PAYLOAD_KEYS"] = tempfile.mkdtemp(prefix="redress-keys-")
import codec  # noqa: E402 - reads REDRESS_PAYLOAD_KEYS

DATA_CONVERTER = codec.data_converter(create_keys=True)

# One signing key per approver in the shipped directory, made once per test session.
APPROVER_KEYS = {}
_PUBLIC_KEYS = {}
for _name in ("li.na", "sam.taylor", "wang.fang", "alex.morgan", "zhang.wei", "chen.jing"):
    _pem, _PUBLIC_KEYS[_name] = signatures.new_key_pair()
    APPROVER_KEYS[_name] = signatures.load_private_key(_pem)


def with_public_keys(rules: Path) -> None:
    """Give every approver in rules/approval.yaml the public half of its test key."""
    path = rules / "approval.yaml"
    text = path.read_text(encoding="utf-8")
    for name, public_key in _PUBLIC_KEYS.items():
        text = re.sub(rf"^(  {re.escape(name)}: {{role: [a-z_]+)}}", rf"\1, public_key: {public_key}}}", text,
                      flags=re.MULTILINE)
    path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=DATA_CONVERTER,
        search_attributes=sa.ALL,
    ) as environment:
        yield environment


@pytest.fixture(scope="session")
def codec_endpoint() -> dict[str, str]:
    """A real codec server for the session, as the `temporal` CLI's environment (plain-JSON clients need it)."""
    import codec_server

    token = codec_server.issue_token(codec.keys_dir(), "test-session")
    with codec_server.CodecServer(codec.keys_dir(), port=0) as server:
        yield {"REDRESS_CODEC": server.url, "TEMPORAL_CODEC_AUTH": f"Bearer {token}"}


@pytest.fixture
def peer() -> Peer:
    with Peer() as running:
        yield running


def write_rules(directory: Path, first_response: str = "20s", resolution: str = "40s",
                survey_window: str = "20s", major_first_response: str | None = None,
                tiers_yaml: str | None = None, agent_desks: bool = False) -> Path:
    """The shipped rules with second-long deadlines (the same for every tier unless told, or `tiers_yaml`).

    Agent desks are per queue and so shared by every test on the session's server; tests that are not
    about them run without (`agent_desks=True` keeps the shipped section).
    """
    if directory.exists():
        shutil.rmtree(directory)
    shutil.copytree(ROOT / "rules", directory, ignore=shutil.ignore_patterns("tests"))
    with_public_keys(directory)
    if not agent_desks:
        across = directory / "across_cases.yaml"
        text = across.read_text(encoding="utf-8")
        across.write_text(text.split("\n# Agent load:", 1)[0] + "\n", encoding="utf-8")
    if tiers_yaml:
        (directory / "tiers.yaml").write_text(tiers_yaml, encoding="utf-8")
        return directory
    tiers = "tiers:\n"
    for tier, role in (("general", "team_lead"), ("urgent", "cs_manager"), ("major", "director")):
        first = major_first_response if tier == "major" and major_first_response else first_response
        tiers += f"  {tier}: {{first_response: {first}, resolution: {resolution}, escalate_to: {role}}}\n"
    tiers += f"follow_up: {{survey_window: {survey_window}, reopen_below: 3}}\n"
    (directory / "tiers.yaml").write_text(tiers, encoding="utf-8")
    return directory


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_rules(tmp_path / "rules")


WorkerFactory = Callable[..., Any]


@asynccontextmanager
async def serving(client: Any, rules: Path, data_dir: Path, peer_url: str | None, task_queue: str | None = None,
                  http_timeout: float = 5.0, **worker_options: Any) -> AsyncIterator[RedressClient]:
    """A real worker with our activities on its own task queue (fresh unless named), and a client for it."""
    queue = task_queue or f"redress-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        rules_dir=rules,
        data_dir=data_dir,
        notify_url=f"{peer_url}/notify" if peer_url else None,
        payment_url=f"{peer_url}/pay" if peer_url else None,
        http_timeout_seconds=http_timeout,
    )
    async with httpx.AsyncClient(timeout=settings.http_timeout_seconds) as http:
        store = RuleStore(settings.rules_dir, settings.rule_versions_dir, check_seconds=0.5)
        activities = ComplaintActivities(settings, http, store, client)
        async with build_worker(client, activities, task_queue=queue, **worker_options):
            yield RedressClient(client, task_queue=queue)


@pytest.fixture
def run_worker(env: WorkflowEnvironment, tmp_path: Path, peer: Peer, rules_dir: Path) -> WorkerFactory:
    """`async with run_worker() as redress:` runs a worker on a fresh task queue and yields a client for it."""

    def start(rules: Path | None = None, use_peer: bool = True, **options: Any):
        return serving(env.client, rules or rules_dir, tmp_path / "data", peer.url if use_peer else None, **options)

    return start


def complaint(**overrides: Any) -> dict[str, Any]:
    """A valid complaint as plain JSON, with a fresh id."""
    data: dict[str, Any] = {
        "complaint_id": f"T-{uuid.uuid4().hex[:10]}",
        "customer": {"id": f"cust-{uuid.uuid4().hex[:8]}", "name": "Li Lei", "phone": "+86 138 0000 0000",
                     "email": "li.lei@example.com", "language": "zh"},
        "channel": "app",
        "received_at": datetime.now(timezone.utc).isoformat(),
        "text": "订单重复扣费，请退款。",
        "order": {"id": "SO-1001", "value": "300.00", "currency": "CNY", "items": [{"sku": "KETTLE-2", "quantity": 1}]},
        "tags": [],
    }
    data.update(overrides)
    return data


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Poll until `check` returns something truthy (visibility and timers are asynchronous)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


async def open_case(redress: RedressClient, respond_as: str | None = None, **overrides: Any) -> str:
    """Submit a complaint, wait for its acknowledgement and, if asked, record an agent's first response."""
    data = complaint(**overrides)
    await redress.submit(data)
    await stage_is(redress, data["complaint_id"], "acknowledged")
    if respond_as:
        from workflows.contract import ResponseRecord

        await redress.record_response(data["complaint_id"], ResponseRecord(agent=respond_as))
    return data["complaint_id"]


async def notices(peer: Peer, complaint_id: str, template: str) -> list:
    """Notices the peer acted on for this case and template (for `eventually`: they are sent asynchronously)."""
    return peer.acted("/notify", complaint_id=complaint_id, template=template)


async def stage_is(redress: RedressClient, complaint_id: str, *stages: str, timeout: float = 20.0):
    async def check():
        status = await redress.status(complaint_id)
        return status if status.stage.value in stages else None

    return await eventually(check, timeout=timeout)
