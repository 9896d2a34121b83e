"""A real worker with Redress's activities in this process, and the test session's payload keys."""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from temporalio.converter import DataConverter

from activities.complaint_activities import ComplaintActivities
from activities.rules.store import RuleStore
from activities.settings import Settings
from redress import codec
from redress.client import RedressClient
from worker import build_worker

PAYLOAD_KEYS = "REDRESS_PAYLOAD_KEYS"


def use_session_payload_keys() -> None:
    """One set of payload keys for a test session, in a fresh temporary folder.

    In the environment, not just in this process: the workers and `redress` commands that
    tests start as subprocesses must open the same payloads. Called once, by conftest's
    `pytest_configure`, before any test module is imported; the keys are made then too.
    """
    os.environ[PAYLOAD_KEYS] = tempfile.mkdtemp(prefix="redress-keys-")
    data_converter()


@functools.cache
def data_converter() -> DataConverter:
    """The Redress data converter over the session's payload keys (made on first use)."""
    return codec.data_converter(create_keys=True)


@asynccontextmanager
async def serving(
    client: Any,
    rules: Path,
    data_dir: Path,
    peer_url: str | None,
    task_queue: str | None = None,
    http_timeout: float = 5.0,
    **worker_options: Any,
) -> AsyncIterator[RedressClient]:
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
