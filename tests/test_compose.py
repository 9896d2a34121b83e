"""docker-compose.yml, read as the file it is (no Docker engine here): the stack matches what we test against."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

from worker import temporal_binary

ROOT = Path(__file__).resolve().parent.parent


def services() -> dict:
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]


def default_tag(image: str) -> str:
    found = re.search(r":\$\{[A-Z_]+:-([^}]+)\}$", image) or re.search(r":([^:$]+)$", image)
    assert found, image
    return found.group(1)


def test_the_server_and_ui_are_the_versions_the_dev_server_of_make_run_runs():
    version = subprocess.run([temporal_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    server, ui = re.search(r"Server ([0-9.]+), UI ([0-9.]+)", version).groups()  # type: ignore[union-attr]
    found = services()
    assert not any("auto-setup" in str(s.get("image")) for s in found.values())  # deprecated upstream
    assert default_tag(found["temporal"]["image"]) == server
    assert found["temporal"]["image"].startswith("temporalio/server:")
    for job in ("temporal-schema", "temporal-namespace"):  # the schema tools of the same server version
        assert found[job]["image"].startswith("temporalio/admin-tools:")
        assert default_tag(found[job]["image"]) == server
    assert default_tag(found["temporal-ui"]["image"]) == ui


def test_the_server_starts_after_its_schema_and_the_workers_after_the_namespace():
    found = services()
    assert found["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    for ours in ("worker", "console"):
        assert found[ours]["depends_on"]["temporal-namespace"]["condition"] == "service_completed_successfully"
    for job in ("temporal-schema", "temporal-namespace"):
        script = found[job]["entrypoint"][-1].removeprefix("/scripts/")
        path = ROOT / "deploy" / "temporal" / script
        assert path.exists(), path
        subprocess.run(["sh", "-n", str(path)], check=True)  # parses as POSIX sh (the image's /bin/sh)
