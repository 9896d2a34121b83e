"""The `redress` command and worker as a user runs them: real subprocesses from the checkout."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def redress_cli(env: Any, *args: str, environment: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`redress --address <the session's server> ARGS` (with these variables too): exit code, stdout, stderr."""
    address = env.client.service_client.config.target_host
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redress",
        "--address",
        address,
        *args,
        cwd=ROOT,
        env={**os.environ, **(environment or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def start_worker(environment: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """`redress worker` with these variables, its output appended to `log`."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redress",
        "worker",
        cwd=ROOT,
        env={**os.environ, **environment},
        stdout=log.open("ab"),
        stderr=asyncio.subprocess.STDOUT,
    )


async def wait_for_line(log: Path, text: str, process: asyncio.subprocess.Process, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in log.read_text(encoding="utf-8", errors="replace"):
        assert process.returncode is None, log.read_text(encoding="utf-8", errors="replace")[-2000:]
        assert asyncio.get_running_loop().time() < deadline, f"no {text!r} in {log}"
        await asyncio.sleep(0.2)


async def stop(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), timeout=30)
