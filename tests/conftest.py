"""Fixtures: one real Temporal dev server per session, a real HTTP peer, workers on fresh task queues.

Nothing here mocks Temporal or HTTP. Deadlines are seconds long: the shipped
rule set is copied with a tiers.yaml of second-long deadlines. Helpers the
tests share live in tests/helpers/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from redress import codec
from redress import search_attributes as sa
from tests.helpers.peer import Peer
from tests.helpers.rules import write_rules
from tests.helpers.serving import data_converter, serving, use_session_payload_keys
from worker import temporal_binary


def pytest_configure(config: pytest.Config) -> None:
    use_session_payload_keys()


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=data_converter(),
        search_attributes=sa.ALL,
    ) as environment:
        yield environment


@pytest.fixture(scope="session")
def codec_endpoint() -> Iterator[dict[str, str]]:
    """A real codec server for the session, as the `temporal` CLI's environment (plain-JSON clients need it)."""
    from redress import codec_server

    token = codec_server.issue_token(codec.keys_dir(), "test-session")
    with codec_server.CodecServer(codec.keys_dir(), port=0) as server:
        yield {"REDRESS_CODEC": server.url, "TEMPORAL_CODEC_AUTH": f"Bearer {token}"}


@pytest.fixture
def peer() -> Iterator[Peer]:
    with Peer() as running:
        yield running


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return write_rules(tmp_path / "rules")


WorkerFactory = Callable[..., Any]


@pytest.fixture
def run_worker(env: WorkflowEnvironment, tmp_path: Path, peer: Peer, rules_dir: Path) -> WorkerFactory:
    """`async with run_worker() as redress:` runs a worker on a fresh task queue and yields a client for it."""

    def start(rules: Path | None = None, use_peer: bool = True, **options: Any) -> Any:
        return serving(env.client, rules or rules_dir, tmp_path / "data", peer.url if use_peer else None, **options)

    return start
