"""The real PostgreSQL the shared-state tests run against starts, takes connections and goes away (issue 19)."""

from __future__ import annotations

import pytest

from tests.helpers.postgres import binaries, postgres_server

pytestmark = pytest.mark.skipif(binaries() is None, reason="needs Debian's postgresql (.ci/run installs it)")


def test_a_throwaway_server_answers_on_its_own_port_and_database():
    import psycopg

    with postgres_server() as url:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE DATABASE redress_state")
        with psycopg.connect(url.rsplit("/", 1)[0] + "/redress_state") as connection:
            row = connection.execute("SELECT current_user, current_database(), version()").fetchone()
    assert row is not None and row[0] == "redress" and row[1] == "redress_state" and "PostgreSQL" in row[2]
