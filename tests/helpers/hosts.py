"""Hosts of one deployment for the shared-state tests: nothing shared on disk but a copy of the deployment key.

Each host has its own working folder (payload keys: a copy of codec.json only; rules; data),
as pods on different machines would. What they must share goes through PostgreSQL.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from temporalio.client import Client

from redress import codec
from redress.client import RedressClient
from redress.state_postgres import PostgresState
from tests.helpers.postgres import postgres_server


@dataclass
class Host:
    folder: Path

    @property
    def keys(self) -> Path:
        return self.folder / "keys"

    @property
    def rules(self) -> Path:
        return self.folder / "rules"

    def environment(self, env: Any, queue: str, state_url: str, peer_url: str) -> dict[str, str]:
        """A `redress worker` of this host, joining the tests' Temporal server."""
        return {
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "REDRESS_TASK_QUEUE": queue,
            "REDRESS_STATE_URL": state_url,
            "REDRESS_PAYLOAD_KEYS": str(self.keys),
            "REDRESS_RULES": str(self.rules),
            "REDRESS_DATA": str(self.folder / "data"),
            "REDRESS_NOTIFY_URL": f"{peer_url}/notify",
            "REDRESS_PAYMENT_URL": f"{peer_url}/pay",
            "REDRESS_RULES_CHECK_SECONDS": "0.5",
            "REDRESS_LOG_FORMAT": "json",
        }

    def client(self, env: Any, queue: str) -> RedressClient:
        """A client on this host (REDRESS_STATE_URL must be set in this process)."""
        config = env.client.config()
        config["data_converter"] = codec.data_converter(self.keys)
        return RedressClient(Client(**config), task_queue=queue)


def host(folder: Path, deployment_keys: Path, rules: Path | None = None) -> Host:
    """A host folder with a copy of the deployment's codec.json and, if given, of a rules folder."""
    made = Host(folder)
    made.keys.mkdir(parents=True)
    shutil.copy2(codec.KeyRing.path(deployment_keys), codec.KeyRing.path(made.keys))
    if rules is not None:
        shutil.copytree(rules, made.rules)
    return made


def deployment_keys(folder: Path) -> Path:
    """The deployment's key ring (what a secret store would hold), made once."""
    codec.KeyRing.rotate(folder, first=True)
    return folder


@contextmanager
def postgres_base() -> Iterator[str]:
    """A real PostgreSQL server; yields its URL without a database (`postgresql://redress@127.0.0.1:PORT`)."""
    with postgres_server() as url:
        try:
            yield url.rsplit("/", 1)[0]
        finally:
            PostgresState.close_all()


def fresh_database(base: str) -> str:
    """The URL of a database that does not exist yet (the first process to start creates it)."""
    return f"{base}/redress_{uuid.uuid4().hex[:10]}"


def query(url: str, statement: str, *params: Any) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement.encode(), params or None)
        return cursor.fetchall() if cursor.description else []
