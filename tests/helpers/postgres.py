"""A real PostgreSQL server for tests: Debian's binaries, a temporary folder and a free port; no system service.

PostgreSQL refuses to run as root (as sessions and CI do here): then the server runs as the
`postgres` user, in a folder it owns. Its socket lives in that folder too, not /var/run.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.processes import free_port

USER = "redress"


def binaries() -> Path | None:
    """Where initdb and pg_ctl are (pg_config's bindir, else the newest Debian version), or None."""
    found = shutil.which("pg_config")
    if found:
        bindir = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if bindir and (Path(bindir) / "initdb").exists():
            return Path(bindir)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


_RUNNING: dict[str, tuple[Path, Path]] = {}  # url -> (bindir, data folder), for stop_server


def stop_server(url: str) -> None:
    """Stop a server started here at once (a test of what happens while the database is gone)."""
    bindir, data = _RUNNING[url]
    subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), check=False)


@contextmanager
def postgres_server(superuser: str = USER) -> Iterator[str]:
    """A fresh server; yields its URL (`postgresql://redress@127.0.0.1:PORT/postgres`, trust authentication)."""
    bindir = binaries()
    assert bindir is not None, "needs Debian's postgresql (.ci/run installs it)"
    folder = Path(tempfile.mkdtemp(prefix="redress-pg-"))
    data, port = folder / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")

    def run(*command: object) -> None:
        subprocess.run(_as_owner([str(c) for c in command]), check=True, capture_output=True)

    run(bindir / "initdb", "-D", data, "-A", "trust", "-U", superuser, "-E", "UTF8")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(bindir / "pg_ctl", "-D", data, "-o", options, "-l", folder / "log", "-w", "start")
    url = f"postgresql://{superuser}@127.0.0.1:{port}/postgres"
    _RUNNING[url] = (bindir, data)
    try:
        yield url
    finally:
        _RUNNING.pop(url, None)
        subprocess.run(_as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), check=False)
        shutil.rmtree(folder, ignore_errors=True)
