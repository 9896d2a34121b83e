"""`redress worker` as a user runs it (what `make run` starts), in a real process."""

from __future__ import annotations

import uuid

import httpx
from temporalio.client import Client

from redress.client import RedressClient
from redress.contract import ResponseRecord
from tests.helpers.browser import allow_origin
from tests.helpers.cases import complaint, stage_is
from tests.helpers.processes import free_port, start_worker, stop, wait_for_line
from tests.helpers.rules import write_rules
from tests.helpers.serving import data_converter


async def test_embedded_server_keeps_cases_across_a_restart(tmp_path):
    port, metrics_port, console_port = free_port(), free_port(), free_port()
    rules = write_rules(tmp_path / "rules")
    allow_origin(rules, f"http://localhost:{console_port}")  # the console answers only on the directory's origins
    environment = {
        "REDRESS_DEV_PORT": str(port),
        "REDRESS_UI_PORT": str(free_port()),
        "REDRESS_CODEC_PORT": str(free_port()),
        "REDRESS_CONSOLE_PORT": str(console_port),
        "REDRESS_METRICS_PORT": str(metrics_port),
        "REDRESS_METRICS_HOST": "127.0.0.1",
        "REDRESS_DATA": str(tmp_path / "data"),
        "REDRESS_RULES": str(rules),
        "REDRESS_LOG_FORMAT": "json",
        "TEMPORAL_ADDRESS": "",
    }
    log = tmp_path / "worker.log"
    worker = await start_worker(environment, log)
    try:
        await wait_for_line(log, '"worker running"', worker)
        assert (tmp_path / "data" / "temporal.db").exists()
        async with httpx.AsyncClient() as http:  # the console `make run` starts beside the embedded server
            signin = await http.get(f"http://localhost:{console_port}/signin")
        assert signin.status_code == 200 and "li.na" in signin.text and "Register a passkey" in signin.text
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter())
        redress = RedressClient(client)
        data = complaint(
            customer={
                "id": f"c-1-{uuid.uuid4().hex[:6]}",
                "name": "Zhang San",
                "email": "zs@example.com",
                "language": "zh",
            }
        )
        cid = data["complaint_id"]
        await redress.submit(data)
        await stage_is(redress, cid, "acknowledged", timeout=30)
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        started = [line for line in metrics.splitlines() if line.startswith("redress_complaints_started{")]
        assert started and 'channel="app"' in started[0] and float(started[0].rsplit(" ", 1)[1]) >= 1
        assert "temporal_workflow_task_execution_latency" in metrics  # the SDK's own metrics
        await stop(worker)

        log = tmp_path / "worker-restarted.log"
        worker = await start_worker(environment, log)
        await wait_for_line(log, '"worker running"', worker)
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter())
        redress = RedressClient(client)
        status = await redress.record_response(cid, ResponseRecord(agent="li.na"))
        assert status.stage.value == "in_progress"  # the case outlived the server and worker restart
    finally:
        if worker.returncode is None:
            await stop(worker)
    text = (tmp_path / "worker.log").read_text(encoding="utf-8") + log.read_text(encoding="utf-8")
    assert f'"complaint_id": "{cid}"' in text
    assert "Zhang San" not in text and "zs@example.com" not in text  # personal data never logged
    outbox = (tmp_path / "data" / "outbox.jsonl").read_text(encoding="utf-8")
    assert outbox.count(f'"complaint_id": "{cid}"') == 1  # the acknowledgement, once
    assert oct((tmp_path / "data" / "outbox.jsonl").stat().st_mode & 0o777) == "0o600"  # it holds contact details


async def test_with_temporal_address_it_joins_that_cluster_and_starts_no_server(env, tmp_path):
    address = env.client.service_client.config.target_host
    queue_owner = RedressClient(env.client)  # the worker serves the contract's task queue `redress`
    ui_port = free_port()
    environment = {
        "TEMPORAL_ADDRESS": address,
        "REDRESS_DATA": str(tmp_path / "data"),
        "REDRESS_RULES": str(write_rules(tmp_path / "rules")),
        "REDRESS_UI_PORT": str(ui_port),
        "REDRESS_LOG_FORMAT": "json",
    }
    log = tmp_path / "worker.log"
    worker = await start_worker(environment, log)
    try:
        await wait_for_line(log, '"worker running"', worker)
        data = complaint()
        await queue_owner.submit(data)
        await stage_is(queue_owner, data["complaint_id"], "acknowledged", timeout=30)
    finally:
        await stop(worker)
    assert worker.returncode == 0
    assert not (tmp_path / "data" / "temporal.db").exists()
    assert '"connected"' in log.read_text(encoding="utf-8")
