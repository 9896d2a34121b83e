"""The console's pages: inbox, cases, case (and its live part), crises, report; the language switch.

Lists read case statuses through statuses.Statuses (seconds old at most); the case
page always asks the case itself.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from redress import trends
from redress.client import RedressError, proposed_at
from redress.console.sessions import Session
from redress.console.web import LANGUAGE_COOKIE, REPORT_CSP, Web
from redress.contract import (
    CRISIS_ID_PREFIX,
    CRISIS_WORKFLOW_TYPE,
    EvidenceKind,
    ProposalStatus,
    RemedyKind,
    Severity,
    Stage,
    Status,
    records_queue,
)

PAGE_SIZE = 25
QUERY_SECONDS = 3.0  # a list page shows what answers within this; a case that does not is left out
MY_CASES_LOOKED_AT = 25  # open cases of my queues whose status is read for the inbox (soonest first)


class Pages(Web):
    async def inbox(self, request: Request) -> Response:
        session, away = self.signed_in(request)
        if away:
            return away
        me = self.directory.person(session.person)
        queues = list(me.queues) if me else []
        pending, my_cases, breached, crises = await asyncio.gather(
            self._awaiting_me(session.person or ""),
            self._my_cases(session.person or "", queues),
            self._breached(queues),
            self._crises(),
        )
        return self.page(
            request,
            session,
            "inbox.html",
            pending=pending,
            my_cases=my_cases,
            breached=breached,
            crises=crises,
            queues=queues,
            now=datetime.now(UTC),
        )

    async def _awaiting_me(self, me: str) -> list[Status]:
        """The proposals awaiting a decision that I may make (the workflow named me eligible), oldest first."""
        waiting = await self.statuses.of(await self.redress.awaiting_approval())
        mine = [s for s in waiting if s.pending_approval and me in s.pending_approval.eligible_approvers]
        return sorted(mine, key=proposed_at)

    async def _my_cases(self, me: str, queues: list[str]) -> list[Status]:
        """The open cases assigned to me, among the soonest-due of my queues (or of all, without a roster)."""
        found = []
        for queue in _each_or_all(queues):
            found += await self.redress.list_cases(queue=queue, limit=MY_CASES_LOOKED_AT)
        found.sort(key=lambda c: c.next_due or datetime.max.replace(tzinfo=UTC))
        statuses = await self.statuses.of(c.complaint_id for c in found[:MY_CASES_LOOKED_AT])
        return [s for s in statuses if s.assignee == me]

    async def _breached(self, queues: list[str]) -> list[Any]:
        found = []
        for queue in _each_or_all(queues):
            found += await self.redress.list_cases(queue=queue, breached=True, limit=100)
        return found

    async def _crises(self) -> list[dict[str, Any]]:
        """The declared crises of this deployment's workers (their records queue), each read within seconds."""
        queue = records_queue(self.redress.task_queue)
        query = f"WorkflowType = '{CRISIS_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = '{queue}'"
        keys = [
            execution.id.removeprefix(CRISIS_ID_PREFIX)
            async for execution in self.redress.client.list_workflows(query, limit=50)
        ]
        watches = await asyncio.gather(*(self._crisis_or_none(k) for k in keys))
        return [w for w in watches if w is not None and w.get("declared_at")]

    async def _crisis_or_none(self, key: str) -> dict[str, Any] | None:
        """A watch whose worker is away would hold its query for the server's 30 s: the page does not wait."""
        try:
            return await asyncio.wait_for(self.redress.crisis(key), QUERY_SECONDS)
        except Exception:
            return None

    async def cases(self, request: Request) -> Response:
        session, away = self.signed_in(request)
        if away:
            return away
        params = request.query_params
        filters = {k: params.get(k) or None for k in ("stage", "severity", "queue", "category", "due_within")}
        breached = {"yes": True, "no": False}.get(params.get("breached", ""))
        page = _bounded_int(params.get("page"), 1, 1000, 1)
        within = None
        problem = None
        if filters["due_within"]:
            try:
                within = _span(filters["due_within"])
            except ValueError as error:
                problem = str(error)
        try:
            found = await self.redress.list_cases(
                stage=filters["stage"],
                severity=filters["severity"],
                queue=filters["queue"],
                category=filters["category"],
                breached=breached,
                due_within=within,
                limit=page * PAGE_SIZE + 1,
            )
        except (ValueError, RedressError) as error:
            problem, found = str(error), []
        rows = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        return self.page(
            request,
            session,
            "cases.html",
            rows=rows,
            filters=filters,
            breached=params.get("breached", ""),
            page=page,
            more=len(found) > page * PAGE_SIZE,
            stages=[s.value for s in Stage],
            severities=[s.value for s in Severity],
            flash=problem,
            query={k: v for k, v in params.items() if k != "page"},
        )

    async def case(self, request: Request) -> Response:
        session, away = self.signed_in(request)
        if away:
            return away
        complaint_id = request.path_params["complaint_id"]
        try:
            status, timeline = await asyncio.gather(
                self.redress.status(complaint_id), self.redress.timeline(complaint_id)
            )
            # where each piece is kept and its note: a query of its own, asked only when there is any
            evidence = await self.redress.evidence(complaint_id) if status.evidence else []
        except RedressError as error:
            return self.page(request, session, "missing.html", status=404, what=complaint_id, reason=str(error))
        context = self._case_context(status, timeline, session)
        context["evidence"] = evidence
        if request.query_params.get("part") == "live":
            return self.page(request, session, "case_live.html", fragment=True, **context)
        try:  # what the customer sent does not change: the full page reads it, its live part does not
            complaint = await self.redress.complaint(complaint_id)
        except RedressError:
            complaint = None
        return self.page(request, session, "case.html", complaint=complaint, **context)

    def _case_context(self, status: Status, timeline: list[Any], session: Session) -> dict[str, Any]:
        pending = status.pending_approval
        me = session.person or ""
        proposal = None
        if pending is not None:
            proposal = {
                "record": pending,
                "mine_to_decide": me in pending.eligible_approvers,
                "terms": f"{pending.proposal_id}: {pending.kind.value} {pending.amount} {pending.currency} "
                f"on case {status.complaint_id}, as {me}",
            }
        approval = self.directory.rules.document.approval
        person = self.directory.person(me)
        return {
            "auto_limits": {currency: str(limit) for currency, limit in approval.auto_approve.items()},
            "free_kinds": [kind.value for kind in approval.free_kinds],
            "has_passkey": bool(person and person.passkeys),
            "s": status,
            "timeline": timeline,
            "proposal": proposal,
            "now": datetime.now(UTC),
            "kinds": [k.value for k in RemedyKind],
            "evidence_kinds": [k.value for k in EvidenceKind],
            "severities": [s.value for s in Severity],
            "open": not status.stage.is_final,
            "can_propose": status.stage
            not in (Stage.received, Stage.resolved, Stage.follow_up, Stage.pending_customer, Stage.awaiting_approval)
            and not status.stage.is_final,
            "version": _version(status, timeline),
        }

    async def case_version(self, request: Request) -> Response:
        """A short digest of the case, polled by the page: it reloads its live part when this changes."""
        _, away = self.signed_in(request)
        if away:
            return self.refuse(request, 401, "signed out")
        complaint_id = request.path_params["complaint_id"]
        try:
            status, timeline = await asyncio.gather(
                self.redress.status(complaint_id), self.redress.timeline(complaint_id)
            )
        except RedressError as error:
            return self.refuse(request, 404, str(error))
        return self.json(request, {"version": _version(status, timeline)})

    # ------------------------------------------------------------ crises and the report

    async def crises(self, request: Request) -> Response:
        session, away = self.signed_in(request)
        if away:
            return away
        return self.page(request, session, "crises.html", crises=await self._crises())

    async def crisis(self, request: Request) -> Response:
        session, away = self.signed_in(request)
        if away:
            return away
        key = request.path_params["key"]
        try:
            watch = await self.redress.crisis(key)
        except RedressError as error:
            return self.page(request, session, "missing.html", status=404, what=key, reason=str(error))
        pending = next((p for p in watch["proposals"] if p["status"] == ProposalStatus.awaiting_approval), None)
        return self.page(
            request,
            session,
            "crisis.html",
            w=watch,
            key=key,
            pending=pending,
            mine_to_decide=pending is not None and session.person in pending.get("eligible_approvers", []),
            kinds=[k.value for k in RemedyKind],
        )

    async def report(self, request: Request) -> Response:
        from redress import report

        session, away = self.signed_in(request)
        if away:
            return away
        since_text = request.query_params.get("since") or "7d"
        try:
            since = report.parse_since(since_text)
        except ValueError as error:
            return self.page(request, session, "report.html", since=since_text, flash=str(error))
        records = await report.collect(self.redress.client, since, None, task_queue=self.redress.task_queue)
        watched = await trends.last_report(self.redress.client, self.redress.task_queue)  # the daily trend watch
        html = report.render_html(report.summarize(records, period="day", since=since, until=None, trends=watched))
        if request.query_params.get("raw") == "1":
            response = HTMLResponse(html)
            response.headers["Content-Security-Policy"] = REPORT_CSP
            return self.finish(request, response)
        return self.page(request, session, "report.html", since=since_text, count=len(records))

    async def language(self, request: Request) -> Response:
        to = request.query_params.get("to", "en")
        back = request.query_params.get("next", "/inbox")
        if not back.startswith("/") or back.startswith("//"):
            back = "/inbox"
        response = RedirectResponse(back, status_code=303)
        if to in ("en", "zh"):
            response.set_cookie(LANGUAGE_COOKIE, to, samesite="strict", httponly=True, max_age=365 * 86400)
        return self.finish(request, response)

    async def home(self, request: Request) -> Response:
        return self.back(request, "/inbox")

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})


def _each_or_all(queues: list[str]) -> list[str | None]:
    """Each of my queues; None (every queue) for someone on no roster, such as a team lead."""
    return list(queues) or [None]


def _version(status: Status, timeline: list[Any]) -> str:
    """Changes whenever what the case page shows changes (not with the clock: the page counts down itself)."""
    digest = hashlib.sha256(status.model_dump_json().encode() + str(len(timeline)).encode())
    return digest.hexdigest()[:16]


def _bounded_int(text: str | None, low: int, high: int, default: int) -> int:
    try:
        return min(max(int(text or default), low), high)
    except ValueError:
        return default


def _span(text: str) -> timedelta:
    """'30m', '4h', '2d' (at most 90 days)."""
    units = {"m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or len(text) > 6:
        raise ValueError("due within: a number and m, h or d (30m, 4h, 2d)")
    seconds = int(text[:-1]) * units[text[-1]]
    if seconds > 90 * 86400:
        raise ValueError("due within: at most 90 days")
    return timedelta(seconds=seconds)
