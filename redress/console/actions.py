"""The console's routine actions: respond, ask the customer, add evidence, resolve, change severity, withdraw,
propose unsigned.

Plain form posts, recorded as the signed-in person; the workflow's refusal is
shown on the case page with its reason. Money decisions are in ceremonies.py.
"""

from __future__ import annotations

from urllib.parse import quote

import structlog
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from redress.client import RedressError, Refused
from redress.console.web import Web
from redress.contract import (
    ContactCorrection,
    CustomerQuestion,
    Evidence,
    RemedyProposal,
    Resolution,
    ResponseRecord,
    SeverityChange,
    Withdrawal,
)

log = structlog.get_logger("redress.console")


class Actions(Web):
    async def act(self, request: Request) -> Response:
        session, away = self.signed_in(request)
        if away:
            return away
        complaint_id = request.path_params["complaint_id"]
        action = request.path_params["action"]
        here = f"/cases/{quote(complaint_id, safe='')}"
        fields = await self.form(request, session)
        if fields is None:
            return self.back(request, here, "refused: the form was stale or not from this console; try again", session)
        me = session.person or ""
        try:
            done = await self._routine(complaint_id, action, me, fields)
        except ValidationError as invalid:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in invalid.errors())
            return self.back(request, here, f"refused: {problems}", session)
        except (Refused, RedressError) as refused:
            log.info("action refused", action=action, complaint_id=complaint_id)
            return self.back(request, here, f"refused: {refused}", session)
        log.info("action taken", action=action, complaint_id=complaint_id)
        return self.back(request, here, done, session)

    async def _routine(self, complaint_id: str, action: str, me: str, fields: dict[str, str]) -> str:
        try:
            return await self._send_routine(complaint_id, action, me, fields)
        finally:
            self.statuses.forget(complaint_id)  # lists show the person's own action at once

    async def _send_routine(self, complaint_id: str, action: str, me: str, fields: dict[str, str]) -> str:
        r = self.redress
        if action == "respond":
            await r.record_response(complaint_id, ResponseRecord(agent=me, message=fields.get("message") or None))
            return "response recorded"
        if action == "ask":
            await r.await_customer(complaint_id, CustomerQuestion(agent=me, question=fields.get("question", "")))
            return "question sent; the clocks are paused until the customer answers"
        if action == "evidence":  # the browser computed the digest; the file itself never left it
            evidence = Evidence.model_validate(
                {
                    "kind": fields.get("kind"),
                    "ref": fields.get("ref", ""),
                    "sha256": fields.get("sha256", ""),
                    "note": fields.get("note") or None,
                    "by": me,
                }
            )
            status = await r.add_evidence(complaint_id, evidence)
            return f"evidence {status.evidence[-1].evidence_id} added"
        if action == "resolve":
            resolution = Resolution(
                agent=me, summary=fields.get("summary", ""), root_cause=fields.get("root_cause") or None
            )
            await r.resolve(complaint_id, resolution)
            return "resolved"
        if action == "severity":
            change = SeverityChange.model_validate(
                {"severity": fields.get("severity"), "by": me, "reason": fields.get("reason", "")}
            )
            await r.change_severity(complaint_id, change)
            return f"severity changed to {change.severity.value}"
        if action == "withdraw":
            await r.withdraw(complaint_id, Withdrawal(by=me, reason=fields.get("reason") or None))
            return "withdrawn"
        if action == "contact":  # the old details become unreadable once the case has moved to its new key
            correction = ContactCorrection.model_validate(
                {field: fields.get(field) or None for field in ("name", "phone", "email")} | {"by": me}
            )
            await r.correct_contact(complaint_id, correction)
            return f"contact details corrected ({', '.join(correction.fields())}); the earlier ones are shredded"
        if action == "propose":
            proposal = RemedyProposal.model_validate(
                {
                    "kind": fields.get("kind"),
                    "amount": fields.get("amount") or "0",
                    "currency": fields.get("currency") or "CNY",
                    "reason": fields.get("reason", ""),
                    "proposed_by": me,
                }
            )
            answer = await r.propose_remedy(complaint_id, proposal)
            return f"{answer.proposal_id}: {answer.status.value.replace('_', ' ')}"
        raise Refused(f"unknown action {action!r}")
