"""The console's plumbing: sessions and cookies, CSRF and origin checks, headers, page rendering, JSON answers.

Safety in one place: a random session id in an HttpOnly, SameSite=Strict cookie
(Secure over TLS); a CSRF token in every form and fetch, and the Origin checked on
every POST; a Content-Security-Policy with no inline script; no personal data in
URLs (case ids and crisis keys only) or in logs (events by kind and case id).
The pages, actions and passkey ceremonies (pages.py, actions.py, ceremonies.py)
are mixed into one `Console` with this (app.py), so they share its state.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from redress.client import RedressClient
from redress.console.i18n import choose, words
from redress.console.people import Directory
from redress.console.sessions import Session, Sessions
from redress.console.statuses import Statuses

COOKIE = "redress_console"
LANGUAGE_COOKIE = "redress_lang"
JSON_LIMIT = 64 * 1024
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# the report is a standalone page with its own inline styles; shown in a frame of the report page, nowhere else
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; base-uri 'none'"


@dataclass
class Settings:
    """How a console runs. `enroll` is for development only: refused with a proxy, and off localhost."""

    rules: Path
    enroll: bool = False  # development: anyone may register a passkey for a person who has none
    trusted_header: str | None = None  # production: the identity-aware proxy's header naming the person
    secure_cookies: bool = False  # served over TLS (or behind a TLS proxy)


class Web:
    """What every page and action stands on."""

    def __init__(self, redress: RedressClient, settings: Settings) -> None:
        self.redress = redress
        self.settings = settings
        self.directory = Directory(settings.rules)
        self.sessions = Sessions()
        self.statuses = Statuses(redress)
        self.templates = Environment(
            loader=PackageLoader("redress.console", "templates"), autoescape=select_autoescape(default=True)
        )
        self.templates.filters["ago"] = _ago
        self.templates.filters["moment"] = _moment
        self.templates.filters["q"] = lambda value: quote(str(value), safe="")

    # ------------------------------------------------------------ plumbing

    def session_of(self, request: Request) -> Session:
        """The request's session; a new anonymous one when it has none (for the CSRF token of the sign-in page).

        A signed-in person stays signed in only while the directory still holds them (and, signed in
        with a passkey, that passkey): someone removed or revoked is signed out at their next request.
        Behind the proxy, the person its header names, if the directory holds them.
        """
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            session = self.sessions.new()
            request.state.new_cookie = session.id
        if self.settings.trusted_header:
            named = request.headers.get(self.settings.trusted_header)
            person = self.directory.person(named) if named else None
            if person is None:
                session.person = None
            elif session.person != person.name:
                self.sessions.renew(session)
                request.state.new_cookie = session.id
                session.person = person.name
        elif session.person is not None:
            person = self.directory.person(session.person)
            if person is None or (session.credential is not None and session.credential not in person.passkeys):
                self.sessions.end(session)
                session = self.sessions.new()
                request.state.new_cookie = session.id
        return session

    def directory_unreadable(self) -> str | None:
        """Why nobody may sign in now: the rules folder does not load (the workers refuse decisions too)."""
        if self.directory.store.refused:
            return "the rules folder does not load (an edit is being fixed): sign-in is closed until it does"
        return None

    def host_allowed(self, request: Request) -> str | None:
        """Why this request's Host is not one the console answers on (None: it is).

        The console answers only on the origins the directory's relying party names: a page on
        another name that resolves here (DNS rebinding) gets nothing, and behind a TLS proxy the
        Origin of a POST is compared with these, not with what the proxy forwarded.
        """
        party = self.directory.relying_party
        if party is None:
            return None
        hosts = {origin.split("://", 1)[1] for origin in party.origins}
        if request.headers.get("host", "") in hosts:
            return None
        return (
            f"this console answers on {', '.join(party.origins)} (relying_party in rules/approval.yaml), "
            f"not on the host this request named"
        )

    def page(
        self,
        request: Request,
        session: Session,
        template: str,
        status: int = 200,
        *,
        fragment: bool = False,
        **context: Any,
    ) -> Response:
        """A page; a `fragment` (the case page's live part, polled in the background) shows no message on what was
        just done, so it leaves that message for the page the browser is about to load after the action."""
        language = choose(request.headers.get("accept-language"), request.cookies.get(LANGUAGE_COOKIE))
        body = self.templates.get_template(template).render(
            t=words(language),
            language=language,
            me=session.person,
            csrf=session.csrf,
            flash=context.pop("flash", None) or (None if fragment else _pop_flash(session)),
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
        """A POST must come from this console's own pages (with SameSite=Strict, a second lock on CSRF).

        Its Origin, when the browser sends one, must be one of the relying party's origins (or,
        without one, this server's own address).
        """
        origin = request.headers.get("origin")
        if origin is None:
            return True
        party = self.directory.relying_party
        if party is not None:
            return origin in party.origins
        return origin == f"{request.url.scheme}://{request.url.netloc}"

    async def form(self, request: Request, session: Session) -> dict[str, str] | None:
        if not self.same_origin(request):
            return None
        try:
            form = await asyncio.wait_for(request.form(max_files=0, max_fields=20, max_part_size=32 * 1024), 10)
        except Exception:  # malformed, too large, or not sent within 10 s: a slow client holds nothing
            return None
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        return fields if session.csrf_ok(fields.get("csrf")) else None

    async def json_body(self, request: Request, session: Session) -> dict[str, Any] | None:
        if not self.same_origin(request) or not session.csrf_ok(request.headers.get("x-csrf-token")):
            return None
        try:
            raw = await asyncio.wait_for(_bounded(request, JSON_LIMIT), 10)
            data = json.loads(raw)
        except (ValueError, TimeoutError, RecursionError):  # RecursionError: 60 KB of "[" nest too deep
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------ pages

    def signed_in(self, request: Request) -> tuple[Session, Response | None]:
        session = self.session_of(request)
        if session.person is None:
            return session, self.back(request, "/signin")
        return session, None

    # ------------------------------------------------------------ small answers

    def json(self, request: Request, body: dict[str, Any], status: int = 200) -> Response:
        return self.finish(request, JSONResponse(body, status_code=status))

    def refuse(self, request: Request, status: int, reason: str) -> Response:
        return self.json(request, {"ok": False, "refused": reason}, status)


async def _bounded(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ValueError("too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _pop_flash(session: Session) -> str | None:
    flash, session.flash = session.flash, None
    return flash


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _short(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
    return str(error)


def _ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours}h{rest // 60:02d}m"


def _moment(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"
