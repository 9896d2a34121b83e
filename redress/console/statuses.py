"""Case statuses for the console's lists, a few seconds old at most, so that an inbox costs no round of queries.

A list page (the inbox) shows what awaits a person across many cases, and each
case's status is a query answered by a worker. Asked afresh for every page view
of every person, they would cost the workers more than the cases do. Here each
status is kept once read: one younger than `fresh` seconds is served as it is;
an older one is served too, and read again in the background; one never read
(or older than `keep`) is read now. What the console itself changes (a response,
a decision) is forgotten at once, so a person sees their own action. The case
page does not use this: it always asks the case.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from redress.client import RedressClient
from redress.contract import Status

FRESH_SECONDS = 2.0  # as fresh as the case page's own polling
KEEP_SECONDS = 60.0  # older than this, an answer is not shown: it is read again first
PARALLEL = 16
QUERY_SECONDS = 3.0
MOST = 20_000


class Statuses:
    def __init__(self, redress: RedressClient, fresh: float = FRESH_SECONDS, keep: float = KEEP_SECONDS) -> None:
        self.redress = redress
        self.fresh = fresh
        self.keep = keep
        self._known: dict[str, tuple[float, Status | None]] = {}
        self._reading: dict[str, asyncio.Task] = {}
        self._gate = asyncio.Semaphore(PARALLEL)

    async def of(self, complaint_ids: Iterable[str]) -> list[Status]:
        """The statuses of these cases, in their order; cases that cannot be read now are left out."""
        ids = list(dict.fromkeys(complaint_ids))
        now = time.monotonic()
        unknown = [i for i in ids if i not in self._known or now - self._known[i][0] > self.keep]
        for complaint_id in ids:
            if complaint_id not in unknown and now - self._known[complaint_id][0] > self.fresh:
                self._read_later(complaint_id)
        await asyncio.gather(*(self._read(i) for i in unknown))
        found = [self._known[i][1] for i in ids if i in self._known]
        return [status for status in found if status is not None]

    def forget(self, complaint_id: str) -> None:
        self._known.pop(complaint_id, None)

    def _read_later(self, complaint_id: str) -> None:
        if complaint_id not in self._reading:
            task = asyncio.create_task(self._read(complaint_id))
            self._reading[complaint_id] = task
            task.add_done_callback(lambda _: self._reading.pop(complaint_id, None))

    async def _read(self, complaint_id: str) -> None:
        async with self._gate:
            try:
                status: Status | None = await asyncio.wait_for(self.redress.status(complaint_id), QUERY_SECONDS)
            except Exception:  # ended, erased, or its worker is away (its query would wait 30 s): not listed now
                status = None
        if len(self._known) >= MOST:
            self._known.pop(next(iter(self._known)))
        self._known[complaint_id] = (time.monotonic(), status)
