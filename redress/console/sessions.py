"""Who is signed in to the console, and the passkey ceremonies under way.

A session is a random id in a cookie (HttpOnly, SameSite=Strict, Secure over TLS);
what it means lives here, in memory, so nothing a browser holds can be forged into
a session, and a console restart signs everyone out. Each session has its own CSRF
token, which every form and every fetch must send back.

A ceremony is one passkey round trip: the console hands the browser a challenge
and keeps, on the server, what the challenge stands for (the exact terms of a
decision, or a random sign-in nonce); the browser's answer is matched to it once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

SESSION_SECONDS = 12 * 3600
IDLE_SECONDS = 2 * 3600
CEREMONY_SECONDS = 5 * 60  # a passkey prompt left open longer is started again
MAX_SESSIONS = 10_000


@dataclass
class Ceremony:
    purpose: str  # "sign-in", "register", "decide", "propose", "crisis-propose", "crisis-approve"
    challenge: bytes
    details: dict[str, Any]
    started: float = field(default_factory=time.monotonic)


@dataclass
class Session:
    id: str
    csrf: str
    person: str | None = None  # None until signed in
    credential: str | None = None  # the passkey signed in with: revoked, the session ends
    created: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    ceremonies: dict[str, Ceremony] = field(default_factory=dict)
    flash: str | None = None  # what the last action came to, shown once on the next page

    def start(self, purpose: str, challenge: bytes, **details: Any) -> str:
        """Remember a ceremony; the id the browser sends back with its answer."""
        now = time.monotonic()
        self.ceremonies = {k: c for k, c in self.ceremonies.items() if now - c.started < CEREMONY_SECONDS}
        if len(self.ceremonies) >= 20:
            self.ceremonies.pop(next(iter(self.ceremonies)))
        ceremony_id = secrets.token_urlsafe(16)
        self.ceremonies[ceremony_id] = Ceremony(purpose, challenge, details)
        return ceremony_id

    def finish(self, ceremony_id: str, purpose: str) -> Ceremony | None:
        """The ceremony, once: an answer cannot be sent twice."""
        ceremony = self.ceremonies.pop(ceremony_id, None)
        if ceremony is None or ceremony.purpose != purpose:
            return None
        if time.monotonic() - ceremony.started > CEREMONY_SECONDS:
            return None
        return ceremony

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf)


class Sessions:
    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}

    def new(self) -> Session:
        self._sweep()
        session = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32))
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._by_id.get(session_id)
        now = time.monotonic()
        if session is None or now - session.created > SESSION_SECONDS or now - session.seen > IDLE_SECONDS:
            self._by_id.pop(session_id or "", None)
            return None
        session.seen = now
        return session

    def end(self, session: Session) -> None:
        self._by_id.pop(session.id, None)

    def renew(self, session: Session) -> Session:
        """A new id for a session whose privilege changed (signing in): a planted id is worth nothing after."""
        self._by_id.pop(session.id, None)
        session.id = secrets.token_urlsafe(32)
        session.csrf = secrets.token_urlsafe(32)
        self._by_id[session.id] = session
        return session

    def _sweep(self) -> None:
        """Room for one more: expired sessions go first, then the oldest anonymous ones.

        Anyone can make anonymous sessions (one per request without a cookie); they never push out
        a signed-in person's. Only when every session is a signed-in one does the oldest of those go.
        """
        if len(self._by_id) < MAX_SESSIONS:
            return
        now = time.monotonic()
        self._by_id = {
            k: s for k, s in self._by_id.items() if now - s.created <= SESSION_SECONDS and now - s.seen <= IDLE_SECONDS
        }
        anonymous = [k for k, s in self._by_id.items() if s.person is None]
        while len(self._by_id) >= MAX_SESSIONS:
            self._by_id.pop(anonymous.pop(0) if anonymous else next(iter(self._by_id)))
