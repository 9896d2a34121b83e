"""Passkey ceremonies: sign-in, registration, and the decisions that move money, signed over their terms.

A decision's challenge is SHA-256 of the canonical terms (redress/signatures.py),
so the passkey signs this amount for this case by this person at this time; the
console relays the assertion and the workflow verifies it (redress/passkeys.py).
The console holds no key that could approve anything. Sign-in is the console's
own: an assertion over a random challenge, checked against the directory.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from activities.rules.schema import RelyingParty
from redress import passkeys, signatures
from redress.client import RedressError, Refused
from redress.console.people import Person
from redress.console.sessions import Session
from redress.console.web import COOKIE, Web, _origin, _short
from redress.contract import (
    ApprovalDecision,
    PasskeyAssertion,
    ProposalStatus,
    RemedyProposal,
)

log = structlog.get_logger("redress.console")


class Ceremonies(Web):
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
            people=self.directory.people() if self.settings.enroll else [],
            enroll=self.settings.enroll,
            proxy=self.settings.trusted_header,
            party=party,
            origin_ok=party is not None and _origin(request) in party.origins,
            origin=_origin(request),
        )

    async def about_person(self, request: Request) -> tuple[Session, str, RelyingParty] | Response:
        """The session, the person a sign-in or registration is about, and the relying party; or the refusal."""
        session = self.session_of(request)
        data = await self.json_body(request, session)
        party = self.directory.relying_party
        if data is None:
            return self.refuse(request, 403, "refused: reload the page and try again")
        if party is None:
            return self.refuse(request, 400, "passkeys are off: the directory names no relying_party")
        return session, str(data.get("person")), party

    def known_or_not(self, name: str) -> Person:
        """The person, or one with no passkey: answers look the same whether or not the directory holds the name."""
        return self.directory.person(name) or Person(name=name, role="", passkeys={}, queues=())

    async def signin_options(self, request: Request) -> Response:
        asked = await self.about_person(request)
        if isinstance(asked, Response):
            return asked
        session, named, _ = asked
        if closed := self.directory_unreadable():
            return self.refuse(request, 503, closed)
        person = self.known_or_not(named)
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
            if problem := passkeys.framed(credential["response"]["clientDataJSON"], party.origins):
                raise InvalidAuthenticationResponse(problem)
        except (WebAuthnException, KeyError, TypeError, ValueError) as refused:
            log.info("sign-in refused", reason=type(refused).__name__)
            return self.refuse(request, 403, f"sign-in refused: {refused}")
        if closed := self.directory_unreadable():
            return self.refuse(request, 503, closed)
        self.sessions.renew(session)
        request.state.new_cookie = session.id
        session.person, session.credential = person.name, credential["id"]
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
        """Why this session may not register a passkey for `person` (None: it may).

        Without enrolment nothing is written: the registration yields an entry that an admin adds
        after checking who asked, as for a key file. With it (development), a person who has no
        passkey yet may be enrolled by whoever reaches the console; one who has needs to be signed in.
        """
        if session.person == person.name or not self.settings.enroll:
            return None
        if not person.passkeys and session.person is None:
            return None
        return "sign in as this person first (a person with a passkey adds another one signed in)"

    async def register_options(self, request: Request) -> Response:
        asked = await self.about_person(request)
        if isinstance(asked, Response):
            return asked
        session, named, party = asked
        if signatures.person_name_problem(named):
            return self.refuse(request, 400, "not a directory name")
        if self.settings.enroll and self.directory.person(named) is None:
            return self.refuse(request, 400, "not in the approver directory: an admin adds people first")
        person = self.known_or_not(named)  # without enrolment nothing is written: no telling who is in the directory
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
        except (WebAuthnException, KeyError, TypeError, ValueError) as refused:
            return self.refuse(request, 400, f"registration refused: {refused}")
        credential_id = passkeys.b64url(verified.credential_id)
        public_key = passkeys.b64url(verified.credential_public_key)
        entry = f"{{id: {credential_id}, public_key: {public_key}}}"
        command = f"redress keys passkey {name} --id {credential_id} --public-key {public_key}"
        if not self.settings.enroll:
            log.info("passkey registered, for an admin to add")
            return self.json(request, {"ok": True, "registered": False, "entry": entry, "command": command})
        person = self.directory.person(name)
        if person is None or self.may_register_for(session, person):
            return self.refuse(request, 403, "no longer allowed to register for this person")
        try:
            edited = editor.register_passkey(self.settings.rules, name, credential_id, public_key)
        except editor.DirectoryEditRefused as refused:
            return self.refuse(request, 400, str(refused))
        log.info("passkey registered in the directory", file=edited.name)
        return self.json(request, {"ok": True, "registered": True, "entry": entry, "command": command})

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
            assertion = assertion_of(data.get("credential"))
            signed_at = datetime.fromisoformat(details["signed_at"])
            message = await self._send_signed(details, assertion, signed_at, session.person or "")
            self.statuses.forget(details["subject"])
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
        if decided.group is not None and decided.status == ProposalStatus.awaiting_approval:
            return f"{decided.proposal_id}: signed by {me}; it waits for {decided.group.waiting_for()}"
        return f"{decided.proposal_id}: {decided.status.value} by {decided.decided_by}"


def assertion_of(credential: Any) -> PasskeyAssertion:
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
