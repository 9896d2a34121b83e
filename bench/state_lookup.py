"""What a case key costs per payload: the local store (SQLite beside the keys) against PostgreSQL.

`python bench/state_lookup.py [N] [--json]`

Every payload of a case is sealed with the case's own key, looked up in the deployment's
shared state for every codec call and never cached (an erasure must count at once on
every host: redress/state.py). This measures, on one host with PostgreSQL on 127.0.0.1
(Debian's binaries, started here as the tests start it):

- `lookup`: one `SubjectKeys.key_for` (read the wrapped key, unwrap it);
- `codec_call`: one codec call as a worker makes them, encoding and then decoding one
  payload of about 1 KB (one lookup each);
- `erasure`: erasing one case's key and, for the store, what follows (SQLite's checkpoint;
  PostgreSQL's vacuum of the key table and a checkpoint).

Medians of N calls after a warm-up; a new case every 100 calls so lookups are not all of one row.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from redress import codec

PAYLOAD = Payload(metadata={"encoding": b"json/plain"}, data=b'{"text": "' + b"x" * 1000 + b'"}')


def measure(keys: Path, count: int) -> dict:
    converter = codec.codec_of(codec.data_converter(keys, create_keys=True))
    subjects = [f"complaint-BENCH-{n}" for n in range(count // 100 + 1)]
    for subject in subjects:
        converter.subjects.key_for(subject, create=True)

    def lookup(n: int) -> None:
        converter.subjects.key_for(subjects[n // 100], create=False)

    def codec_call(n: int) -> None:
        bound = converter.with_context(
            WorkflowSerializationContext(namespace="default", workflow_id=subjects[n // 100])
        )
        sealed = bound.encode_one(PAYLOAD, {})  # what `encode` does for each payload of a call
        bound.decode_one(sealed, {})

    def erasure(n: int) -> None:
        converter.subjects.erase(subjects[n // 100])
        converter.subjects.after_erasure()

    result = {}
    for name, step, repeats in (("lookup", lookup, count), ("codec_call", codec_call, count), ("erasure", erasure, 20)):
        for n in range(min(50, repeats)):
            step(n)  # warm up: prepared statements, pool, caches
        timings = []
        for n in range(repeats):
            started = time.perf_counter()
            step(n * 100 if name == "erasure" else n)
            timings.append((time.perf_counter() - started) * 1e6)
        result[f"{name}_us"] = round(statistics.median(timings), 1)
    return result


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 5000
    from tests.helpers.postgres import postgres_server

    with tempfile.TemporaryDirectory() as tmp:
        local = measure(Path(tmp) / "local", count)
        with postgres_server() as url:
            os.environ["REDRESS_STATE_URL"] = url.rsplit("/", 1)[0] + "/redress_bench"
            try:
                shared = measure(Path(tmp) / "shared", count)
            finally:
                from redress.state_postgres import PostgresState

                PostgresState.close_all()
                del os.environ["REDRESS_STATE_URL"]
    result = {"calls": count, "local": local, "postgresql": shared}
    if "--json" in sys.argv:
        print(json.dumps(result, indent=2))
        return
    for what in ("lookup_us", "codec_call_us", "erasure_us"):
        print(f"{what}: local {local[what]}, postgresql {shared[what]}")


if __name__ == "__main__":
    main()
