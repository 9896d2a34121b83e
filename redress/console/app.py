"""The console's pages and actions (Starlette, server-rendered Jinja2 templates, one small script).

Every page needs a signed-in person. Routine actions (respond, ask the customer,
resolve, change severity, withdraw, an unsigned proposal) are plain form posts
recorded as that person. Decisions that move money (approve, reject, a proposal
beyond the automatic limit, a crisis' common remedy) are signed by the person's
passkey over the canonical terms (redress/passkeys.py) and verified by the
workflow: the console only relays the assertion, and shows the workflow's
refusal with its reason when there is one.

Safety, in one place: a random session id in an HttpOnly, SameSite=Strict cookie
(Secure over TLS); a CSRF token in every form and fetch, and the Origin checked on
every POST; a Content-Security-Policy with no inline script; no personal data in
URLs (case ids and crisis keys only) or in logs (events by kind and case id).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from redress import passkeys, signatures
from redress.client import RedressClient, RedressError, Refused
from redress.console.i18n import choose, words
from redress.console.people import Directory, Person
from redress.console.sessions import Session, Sessions
from redress.contract import (
    CRISIS_ID_PREFIX,
    CRISIS_WORKFLOW_TYPE,
    ApprovalDecision,
    CustomerQuestion,
    PasskeyAssertion,
    ProposalStatus,
    RemedyKind,
    RemedyProposal,
    Resolution,
    ResponseRecord,
    Severity,
    SeverityChange,
    Stage,
    Status,
    Withdrawal,
)

log = structlog.get_logger("redress.console")

COOKIE = "redress_console"
LANGUAGE_COOKIE = "redress_lang"
JSON_LIMIT = 64 * 1024
PAGE_SIZE = 25
MY_CASES_LOOKED_AT = 25  # open cases of my queues whose status is read for the inbox (soonest first)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# the report is a standalone page with its own inline styles; shown in a frame of the report page, nowhere else
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; base-uri 'none'"


@dataclass
class Settings:
    rules: Path
    enroll: bool = False  # development: anyone may register a passkey for a person who has none
    trusted_header: str | None = None  # production: the identity-aware proxy's header naming the person
    secure_cookies: bool = False  # served over TLS (or behind a TLS proxy)


class Console:
    def __init__(self, redress: RedressClient, settings: Settings) -> None:
        self.redress = redress
        self.settings = settings
        self.directory = Directory(settings.rules)
        self.sessions = Sessions()
        self.templates = Environment(
            loader=PackageLoader("redress.console", "templates"), autoescape=select_autoescape(default=True)
        )
        self.templates.filters["ago"] = _ago
        self.templates.filters["moment"] = _moment
        self.templates.filters["q"] = lambda value: quote(str(value), safe="")

    # ------------------------------------------------------------ plumbing

    def session_of(self, request: Request) -> Session:
        """The request's session; a new anonymous one when it has none (for the CSRF token of the sign-in page)."""
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            session = self.sessions.new()
            request.state.new_cookie = session.id
        if self.settings.trusted_header:
            person = request.headers.get(self.settings.trusted_header)
            if person and signatures.person_name_problem(person) is None:
                if session.person != person:
                    self.sessions.renew(session)
                    request.state.new_cookie = session.id
                session.person, session.how = person, "proxy"
            else:
                session.person = None
        return session

    def page(self, request: Request, session: Session, template: str, status: int = 200, **context: Any) -> Response:
        language = choose(request.headers.get("accept-language"), request.cookies.get(LANGUAGE_COOKIE))
        body = self.templates.get_template(template).render(
            t=words(language),
            language=language,
            me=session.person,
            csrf=session.csrf,
            flash=context.pop("flash", None) or _pop_flash(session),
            path=request.url.path,
            **context,
        )
        return self.finish(request, HTMLResponse(body, status_code=status))

    def finish(self, request: Request, response: Response) -> Response:
        response.headers["Content-Security-Policy"] = response.headers.get("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        new_cookie = getattr(request.state, "new_cookie", None)
        if new_cookie:
            response.set_cookie(
                COOKIE,
                new_cookie,
                httponly=True,
                samesite="strict",
                secure=self.settings.secure_cookies or request.url.scheme == "https",
                path="/",
            )
        return response

    def back(self, request: Request, to: str, flash: str | None = None, session: Session | None = None) -> Response:
        if flash and session is not None:
            session.flash = flash
        return self.finish(request, RedirectResponse(to, status_code=303))

    def same_origin(self, request: Request) -> bool:
        """A POST must come from this console's own pages (with SameSite=Strict, a second lock on CSRF)."""
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.url.netloc}"
        return origin is None or origin == own

    async def form(self, request: Request, session: Session) -> dict[str, str] | None:
        if not self.same_origin(request):
            return None
        try:
            form = await request.form(max_files=0, max_fields=20, max_part_size=32 * 1024)
        except Exception:
            return None
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        return fields if session.csrf_ok(fields.get("csrf")) else None

    async def json_body(self, request: Request, session: Session) -> dict[str, Any] | None:
        if not self.same_origin(request) or not session.csrf_ok(request.headers.get("x-csrf-token")):
            return None
        try:
            raw = await asyncio.wait_for(_bounded(request, JSON_LIMIT), 10)
            data = json.loads(raw)
        except (ValueError, TimeoutError):
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------ passkey ceremonies

    def ask_passkey(
        self, request: Request, session: Session, signer: Person, challenge: bytes, purpose: str, **details: Any
    ) -> Response:
        """Options for `navigator.credentials.get` with one of `signer`'s passkeys; the ceremony kept here."""
        party = self.directory.relying_party
        assert party is not None  # callers check first, to refuse with a reason
        options = generate_authentication_options(
            rp_id=party.id,
            challenge=challenge,
            allow_credentials=_descriptors(signer.passkeys),
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        ceremony = session.start(purpose, challenge, **details)
        shown = {"terms": json.loads(details["terms"])} if "terms" in details else {}
        return self.json(request, {"ceremony": ceremony, "publicKey": json.loads(options_to_json(options)), **shown})

    async def answer(self, request: Request, session: Session, purpose: str) -> tuple[dict[str, Any], Any] | None:
        """The browser's answer to a ceremony of this session, once (None: stale, replayed or not from here)."""
        data = await self.json_body(request, session)
        ceremony = session.finish(str(data.get("ceremony")), purpose) if data else None
        if data is None or ceremony is None or self.directory.relying_party is None:
            return None
        return data, ceremony

    # ------------------------------------------------------------ sign-in and passkey registration

    async def signin_page(self, request: Request) -> Response:
        session = self.session_of(request)
        if session.person:
            return self.back(request, "/inbox")
        party = self.directory.relying_party
        return self.page(
            request,
            session,
            "signin.html",
            people=self.directory.people(),
            enroll=self.settings.enroll,
            proxy=self.settings.trusted_header,
            party=party,
            origin_ok=party is not None and _origin(request) in party.origins,
            origin=_origin(request),
        )

    async def signin_options(self, request: Request) -> Response:
        session = self.session_of(request)
        data = await self.json_body(request, session)
        party = self.directory.relying_party
        person = self.directory.person(str((data or {}).get("person")))
        if data is None:
            return self.refuse(request, 403, "refused: reload the page and try again")
        if party is None or person is None or not person.passkeys:
            return self.refuse(request, 400, "this person has no passkey in the directory")
        return self.ask_passkey(request, session, person, secrets.token_bytes(32), "sign-in", person=person.name)

    async def signin_finish(self, request: Request) -> Response:
        session = self.session_of(request)
        answered = await self.answer(request, session, "sign-in")
        party = self.directory.relying_party
        if answered is None or party is None:
            return self.refuse(request, 400, "the sign-in expired or was already used: try again")
        data, ceremony = answered
        person = self.directory.person(ceremony.details["person"])
        try:
            credential = data["credential"]
            public_key = (person.passkeys if person else {}).get(credential["id"])
            if person is None or public_key is None:
                raise InvalidAuthenticationResponse("not a passkey of this person")
            verify_authentication_response(
                credential=credential,
                expected_challenge=ceremony.challenge,
                expected_rp_id=party.id,
                expected_origin=list(party.origins),
                credential_public_key=passkeys.from_b64url(public_key),
                credential_current_sign_count=0,
                require_user_verification=True,
            )
        except (InvalidAuthenticationResponse, KeyError, TypeError, ValueError) as refused:
            log.info("sign-in refused", reason=type(refused).__name__)
            return self.refuse(request, 403, f"sign-in refused: {refused}")
        self.sessions.renew(session)
        request.state.new_cookie = session.id
        session.person, session.how = person.name, "passkey"
        log.info("signed in", how="passkey")
        return self.json(request, {"ok": True, "next": "/inbox"})

    async def signout(self, request: Request) -> Response:
        session = self.session_of(request)
        if await self.form(request, session) is None:
            return self.refuse(request, 403, "refused: reload the page and try again")
        self.sessions.end(session)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return self.finish(request, response)

    def may_register_for(self, session: Session, person: Person) -> str | None:
        """Why this session may not register a passkey for `person` (None: it may)."""
        if session.person == person.name:
            return None
        if self.settings.enroll and not person.passkeys and session.person is None:
            return None
        return "sign in as this person first (a person with a passkey adds another one signed in)"

    async def register_options(self, request: Request) -> Response:
        session = self.session_of(request)
        data = await self.json_body(request, session)
        party = self.directory.relying_party
        person = self.directory.person(str((data or {}).get("person")))
        if data is None:
            return self.refuse(request, 403, "refused: reload the page and try again")
        if party is None:
            return self.refuse(request, 400, "passkeys are off: the directory names no relying_party")
        if person is None:
            return self.refuse(request, 400, "not in the approver directory: an admin adds people first")
        if problem := self.may_register_for(session, person):
            return self.refuse(request, 403, problem)
        challenge = secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=party.id,
            rp_name=party.name,
            user_name=person.name,
            user_id=hashlib.sha256(f"redress:{person.name}".encode()).digest()[:16],
            challenge=challenge,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=_descriptors(person.passkeys),
            supported_pub_key_algs=[COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA],
        )
        ceremony = session.start("register", challenge, person=person.name)
        return self.json(request, {"ceremony": ceremony, "publicKey": json.loads(options_to_json(options))})

    async def register_finish(self, request: Request) -> Response:
        from activities.rules import directory as editor

        session = self.session_of(request)
        answered = await self.answer(request, session, "register")
        party = self.directory.relying_party
        if answered is None or party is None:
            return self.refuse(request, 400, "the registration expired or was already used: try again")
        data, ceremony = answered
        name = ceremony.details["person"]
        try:
            verified = verify_registration_response(
                credential=data["credential"],
                expected_challenge=ceremony.challenge,
                expected_rp_id=party.id,
                expected_origin=list(party.origins),
                require_user_verification=True,
                supported_pub_key_algs=[COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA],
            )
        except (InvalidRegistrationResponse, KeyError, TypeError, ValueError) as refused:
            return self.refuse(request, 400, f"registration refused: {refused}")
        credential_id = passkeys.b64url(verified.credential_id)
        public_key = passkeys.b64url(verified.credential_public_key)
        entry = f"{{id: {credential_id}, public_key: {public_key}}}"
        command = f"redress keys passkey {name} --id {credential_id} --public-key {public_key}"
        person = self.directory.person(name)
        if person is None or self.may_register_for(session, person):
            return self.refuse(request, 403, "no longer allowed to register for this person")
        if not self.settings.enroll:
            log.info("passkey registered, for an admin to add")
            return self.json(request, {"ok": True, "registered": False, "entry": entry, "command": command})
        try:
            edited = editor.register_passkey(self.settings.rules, name, credential_id, public_key)
        except editor.DirectoryEditRefused as refused:
            return self.refuse(request, 400, str(refused))
        log.info("passkey registered in the directory", file=edited.name)
        return self.json(request, {"ok": True, "registered": True, "entry": entry, "command": command})

    # ------------------------------------------------------------ pages

    def signed_in(self, request: Request) -> tuple[Session, Response | None]:
        session = self.session_of(request)
        if session.person is None:
            return session, self.back(request, "/signin")
        return session, None

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
        return [
            s
            for s in await self.redress.pending()
            if s.pending_approval and me in s.pending_approval.eligible_approvers
        ]

    async def _my_cases(self, me: str, queues: list[str]) -> list[Status]:
        """The open cases assigned to me, among the soonest-due of my queues (or of all, without a roster)."""
        found = []
        for queue in _each_or_all(queues):
            found += await self.redress.list_cases(queue=queue, limit=MY_CASES_LOOKED_AT)
        found.sort(key=lambda c: c.next_due or datetime.max.replace(tzinfo=UTC))
        statuses = await asyncio.gather(
            *(self._status_or_none(c.complaint_id) for c in found[:MY_CASES_LOOKED_AT]), return_exceptions=False
        )
        return [s for s in statuses if s is not None and s.assignee == me]

    async def _status_or_none(self, complaint_id: str) -> Status | None:
        try:
            return await self.redress.status(complaint_id)
        except Exception:
            return None

    async def _breached(self, queues: list[str]) -> list[Any]:
        found = []
        for queue in _each_or_all(queues):
            found += await self.redress.list_cases(queue=queue, breached=True, limit=100)
        return found

    async def _crises(self) -> list[dict[str, Any]]:
        query = f"WorkflowType = '{CRISIS_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
        keys = [
            execution.id.removeprefix(CRISIS_ID_PREFIX)
            async for execution in self.redress.client.list_workflows(query, limit=50)
        ]
        watches = await asyncio.gather(*(self._crisis_or_none(k) for k in keys))
        return [w for w in watches if w is not None and w.get("declared_at")]

    async def _crisis_or_none(self, key: str) -> dict[str, Any] | None:
        try:
            return await self.redress.crisis(key)
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
        except RedressError as error:
            return self.page(request, session, "missing.html", status=404, what=complaint_id, reason=str(error))
        template = "case_live.html" if request.query_params.get("part") == "live" else "case.html"
        return self.page(request, session, template, **self._case_context(status, timeline, session))

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

    # ------------------------------------------------------------ routine actions

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
        r = self.redress
        if action == "respond":
            await r.record_response(complaint_id, ResponseRecord(agent=me, message=fields.get("message") or None))
            return "response recorded"
        if action == "ask":
            await r.await_customer(complaint_id, CustomerQuestion(agent=me, question=fields.get("question", "")))
            return "question sent; the clocks are paused until the customer answers"
        if action == "resolve":
            await r.resolve(complaint_id, Resolution(agent=me, summary=fields.get("summary", "")))
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

    # ------------------------------------------------------------ decisions signed with a passkey

    async def sign_options(self, request: Request) -> Response:
        """The terms of a money decision, and the passkey challenge that is their hash."""
        session, away = self.signed_in(request)
        if away:
            return self.refuse(request, 401, "signed out: sign in again")
        data = await self.json_body(request, session)
        if data is None:
            return self.refuse(request, 403, "refused: reload the page and try again")
        me = self.directory.person(session.person)
        party = self.directory.relying_party
        if me is None or not me.passkeys or party is None:
            return self.refuse(request, 403, "you have no passkey in the approver directory: register one first")
        subject = request.path_params.get("complaint_id") or request.path_params.get("key") or ""
        crisis = "key" in request.path_params
        try:
            terms, details = await self._terms(subject, crisis, str(data.get("action")), data, me.name)
        except (Refused, RedressError) as refused:
            return self.refuse(request, 409, str(refused))
        except (ValidationError, ValueError, InvalidOperation) as invalid:
            return self.refuse(request, 400, f"refused: {_short(invalid)}")
        return self.ask_passkey(
            request, session, me, passkeys.challenge(terms), "sign", subject=subject, crisis=crisis, **details
        )

    async def _terms(
        self, subject: str, crisis: bool, action: str, data: dict[str, Any], me: str
    ) -> tuple[bytes, dict[str, Any]]:
        signed_at = datetime.now(UTC).replace(microsecond=0)
        if action in ("approve", "reject"):
            if crisis:
                pending = next(
                    (
                        p
                        for p in (await self.redress.crisis(subject))["proposals"]
                        if p["status"] == "awaiting_approval"
                    ),
                    None,
                )
                if pending is None or action != "approve":
                    raise Refused("no common remedy awaits approval")
                pid, kind = pending["proposal_id"], pending["kind"]
                amount, currency = Decimal(pending["amount"]), pending["currency"]
            else:
                record = (await self.redress.status(subject)).pending_approval
                if record is None:
                    raise Refused("no remedy awaits approval")
                pid, kind, amount, currency = record.proposal_id, None, record.amount, record.currency
            if str(data.get("proposal_id")) != pid:
                raise Refused(f"the proposal changed meanwhile: {pid} awaits a decision now; reload the page")
            terms = signatures.signed_terms(
                subject,
                pid,
                action,
                amount,
                currency,
                me,
                signed_at,
                kind=kind,
                scope=signatures.CRISIS if crisis else None,
            )
            return terms, {"action": action, "proposal_id": pid, "signed_at": signed_at.isoformat(), "terms": terms}
        if action == "propose":
            proposal = RemedyProposal.model_validate(
                {
                    "kind": data.get("kind"),
                    "amount": str(data.get("amount") or "0"),
                    "currency": data.get("currency") or "CNY",
                    "reason": data.get("reason") or "",
                    "proposed_by": me,
                }
            )
            if crisis:
                pid = f"C{len((await self.redress.crisis(subject))['proposals']) + 1}"
            else:
                pid = f"P{len((await self.redress.status(subject)).remedies) + 1}"
            terms = signatures.signed_terms(
                subject,
                pid,
                "propose",
                proposal.amount,
                proposal.currency,
                me,
                signed_at,
                kind=proposal.kind.value,
                scope=signatures.CRISIS if crisis else None,
            )
            details = {
                "action": "propose",
                "proposal": proposal.model_dump(mode="json"),
                "signed_at": signed_at.isoformat(),
            }
            return terms, details
        raise ValueError(f"unknown action {action!r}")

    async def sign_finish(self, request: Request) -> Response:
        """Relay the passkey's assertion to the workflow, which verifies it; answer with its verdict."""
        session, away = self.signed_in(request)
        if away:
            return self.refuse(request, 401, "signed out: sign in again")
        answered = await self.answer(request, session, "sign")
        if answered is None:
            return self.refuse(request, 400, "the signing expired or was already used: start again")
        data, ceremony = answered
        details = ceremony.details
        try:
            assertion = _assertion(data.get("credential"))
            signed_at = datetime.fromisoformat(details["signed_at"])
            message = await self._send_signed(details, assertion, signed_at, session.person or "")
        except ValidationError as invalid:
            return self.refuse(request, 400, f"refused: {_short(invalid)}")
        except (Refused, RedressError) as refused:
            log.info("signed decision refused", action=details["action"], subject=details["subject"])
            return self.refuse(request, 409, str(refused))
        log.info("signed decision accepted", action=details["action"], subject=details["subject"])
        return self.json(request, {"ok": True, "message": message})

    async def _send_signed(
        self, details: dict[str, Any], assertion: PasskeyAssertion, signed_at: datetime, me: str
    ) -> str:
        subject, crisis, action = details["subject"], details["crisis"], details["action"]
        if action == "propose":
            proposal = RemedyProposal.model_validate(
                {**details["proposal"], "signed_at": signed_at, "passkey": assertion.model_dump()}
            )
            if crisis:
                record = await self.redress.propose_common_remedy(subject, proposal)
                return f"{record['proposal_id']}: {record['status'].replace('_', ' ')}"
            answer = await self.redress.propose_remedy(subject, proposal)
            return f"{answer.proposal_id}: {answer.status.value.replace('_', ' ')}"
        decision = ApprovalDecision(
            proposal_id=details["proposal_id"], approver=me, signed_at=signed_at, passkey=assertion
        )
        if crisis:
            record = await self.redress.approve_common_remedy_as(subject, decision)
            return f"{record['proposal_id']}: approved for {len(record['applied_to'])} linked case(s)"
        if action == "approve":
            decided = await self.redress.approve_remedy(subject, decision)
        else:
            decided = await self.redress.reject_remedy(subject, decision)
        return f"{decided.proposal_id}: {decided.status.value} by {decided.decided_by}"

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
        html = report.render_html(report.summarize(records, period="day", since=since, until=None))
        if request.query_params.get("raw") == "1":
            response = HTMLResponse(html)
            response.headers["Content-Security-Policy"] = REPORT_CSP
            return self.finish(request, response)
        return self.page(request, session, "report.html", since=since_text, count=len(records))

    # ------------------------------------------------------------ small answers

    def json(self, request: Request, body: dict[str, Any], status: int = 200) -> Response:
        return self.finish(request, JSONResponse(body, status_code=status))

    def refuse(self, request: Request, status: int, reason: str) -> Response:
        return self.json(request, {"ok": False, "refused": reason}, status)

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


def create_app(redress: RedressClient, settings: Settings) -> Starlette:
    console = Console(redress, settings)
    static = Path(__file__).with_name("static")
    app = Starlette(
        routes=[
            Route("/", console.home),
            Route("/healthz", console.health),
            Route("/lang", console.language),
            Route("/signin", console.signin_page),
            Route("/signin/options", console.signin_options, methods=["POST"]),
            Route("/signin/finish", console.signin_finish, methods=["POST"]),
            Route("/signout", console.signout, methods=["POST"]),
            Route("/passkeys/options", console.register_options, methods=["POST"]),
            Route("/passkeys/finish", console.register_finish, methods=["POST"]),
            Route("/inbox", console.inbox),
            Route("/cases", console.cases),
            Route("/cases/{complaint_id}", console.case),
            Route("/cases/{complaint_id}/version", console.case_version),
            Route("/cases/{complaint_id}/sign/options", console.sign_options, methods=["POST"]),
            Route("/cases/{complaint_id}/sign/finish", console.sign_finish, methods=["POST"]),
            Route("/cases/{complaint_id}/{action}", console.act, methods=["POST"]),
            Route("/crises", console.crises),
            Route("/crises/{key}", console.crisis),
            Route("/crises/{key}/sign/options", console.sign_options, methods=["POST"]),
            Route("/crises/{key}/sign/finish", console.sign_finish, methods=["POST"]),
            Route("/report", console.report),
            Mount("/static", StaticFiles(directory=static), name="static"),
        ]
    )
    app.state.console = console
    return app


# ---------------------------------------------------------------- helpers


async def _bounded(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ValueError("too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _assertion(credential: Any) -> PasskeyAssertion:
    """The browser's credential JSON (PublicKeyCredential.toJSON) as the workflow's message field."""
    if not isinstance(credential, dict) or not isinstance(credential.get("response"), dict):
        raise Refused("no passkey assertion was sent")
    response = credential["response"]
    return PasskeyAssertion.model_validate(
        {
            "credential_id": credential.get("id"),
            "authenticator_data": response.get("authenticatorData"),
            "client_data_json": response.get("clientDataJSON"),
            "signature": response.get("signature"),
            "user_handle": response.get("userHandle") or None,
        }
    )


def _descriptors(credentials: dict[str, str]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=passkeys.from_b64url(c)) for c in credentials]


def _each_or_all(queues: list[str]) -> list[str | None]:
    """Each of my queues; None (every queue) for someone on no roster, such as a team lead."""
    return list(queues) or [None]


def _pop_flash(session: Session) -> str | None:
    flash, session.flash = session.flash, None
    return flash


def _version(status: Status, timeline: list[Any]) -> str:
    """Changes whenever what the case page shows changes (not with the clock: the page counts down itself)."""
    digest = hashlib.sha256(status.model_dump_json().encode() + str(len(timeline)).encode())
    return digest.hexdigest()[:16]


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
    return str(error)


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


def _ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m"


def _moment(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"
