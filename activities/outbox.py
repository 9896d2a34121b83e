"""The local outbox: where messages and payouts go when no HTTP peer is configured.

A new user sees in data/outbox.jsonl exactly what would have been sent. Each
entry carries its idempotency key and a key is written once, so a retried
activity never produces a second entry.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any


class Outbox:
    def __init__(self, path: Path):
        self.path = path
        self._lock = asyncio.Lock()
        self._keys: set[str] | None = None

    def _load_keys(self) -> set[str]:
        keys: set[str] = set()
        if self.path.exists():
            with self.path.open(encoding="utf-8") as lines:
                for line in lines:
                    try:
                        keys.add(json.loads(line)["key"])
                    except (ValueError, KeyError):
                        continue  # a torn last line from a crash: the retry rewrites it
        return keys

    async def put(self, key: str, entry: dict[str, Any]) -> bool:
        """Append the entry unless its key is already there; True if it was written now."""
        async with self._lock:
            if self._keys is None:
                self._keys = self._load_keys()
            if key in self._keys:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # owner-only: the entries carry customers' contact details and messages
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.fchmod(descriptor, 0o600)
            with os.fdopen(descriptor, "a", encoding="utf-8") as out:
                out.write(json.dumps({"key": key, **entry}, ensure_ascii=False, default=str) + "\n")
            self._keys.add(key)
            return True

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
