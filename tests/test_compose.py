"""docker-compose.yml, read as the file it is (no Docker engine here): the stack matches what we test against."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.helpers.postgres import binaries, postgres_server
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


def test_our_services_keep_nothing_on_disk_but_the_deployment_key():
    found = services()
    for ours in ("worker", "codec-server", "console"):
        environment = dict(item.split("=", 1) for item in found[ours]["environment"])
        # the password travels beside the URL (libpq's PGPASSWORD): any characters, never in an error's URL
        assert environment["REDRESS_STATE_URL"] == "postgresql://redress@postgresql:5432/redress"
        assert environment["PGPASSWORD"] == "${REDRESS_DB_PASSWORD:-redress}"
        assert found[ours]["depends_on"]["redress-database"]["condition"] == "service_completed_successfully"
        mounts = [volume.split(":") for volume in found[ours].get("volumes", [])]
        writable = [m for m in mounts if m[-1] != "ro"]
        assert writable == [], f"{ours} mounts state of its own: {writable}"
        assert ["./keys/codec.json", "/keys/codec.json", "ro"] in mounts
    assert "worker-data" not in YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text()).get("volumes", {})


@pytest.mark.skipif(binaries() is None, reason="needs Debian's postgresql (.ci/run installs it)")
def test_the_database_job_makes_a_role_and_database_of_our_own_and_can_run_again():
    """deploy/redress/create-database.sh, run as compose runs it (psql as the server's superuser), twice."""
    job = services()["redress-database"]
    assert job["entrypoint"][-1] == "/scripts/create-database.sh"
    import psycopg

    with postgres_server(superuser="temporal") as url:
        with psycopg.connect(url, autocommit=True) as admin:  # what the temporal-schema job leaves
            admin.execute("CREATE DATABASE temporal")
        with psycopg.connect(url.rsplit("/", 1)[0] + "/temporal", autocommit=True) as temporal:
            temporal.execute("CREATE TABLE executions (id text)")
        port = url.split(":")[-1].split("/")[0]
        environment = {
            **os.environ,
            "PGHOST": "127.0.0.1",
            "PGPORT": port,
            "PGUSER": "temporal",
            "REDRESS_DB_PASSWORD": "s3cret'; DROP ROLE temporal; --",
        }
        for _ in range(2):
            done = subprocess.run(
                ["sh", str(ROOT / "deploy" / "redress" / "create-database.sh")],
                env=environment,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr
        owner_url = url.rsplit("@", 1)[1].rsplit("/", 1)[0]
        with psycopg.connect(f"postgresql://redress@{owner_url}/redress") as connection:
            row = connection.execute(
                "SELECT current_user, pg_has_role('redress', 'pg_checkpoint', 'member'), "
                "(SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = 'redress'), "
                "(SELECT count(*) FROM pg_roles WHERE rolname = 'temporal')"
            ).fetchone()
            connection.execute("CREATE SCHEMA redress")  # it owns its database: the workers make their tables
        with (
            psycopg.connect(f"postgresql://redress@{owner_url}/temporal") as connection,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            connection.execute("SELECT * FROM executions")  # nothing of Temporal's is readable
    assert row == ("redress", True, False, 1)
