"""The console's application: its routes, each served by one part of `Console`.

Every page needs a signed-in person. Routine actions (actions.py) are plain form
posts recorded as that person. Decisions that move money (ceremonies.py) are
signed by the person's passkey and verified by the workflow. Plumbing and safety
are in web.py; the pages in pages.py.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from redress.client import RedressClient
from redress.console.actions import Actions
from redress.console.ceremonies import Ceremonies
from redress.console.pages import Pages
from redress.console.web import Settings
from redress.state import StateUnavailable

__all__ = ["Console", "Settings", "create_app"]


class Console(Pages, Actions, Ceremonies):
    """One console: the pages, the actions and the passkey ceremonies over one set of sessions and caches."""


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
        ],
        exception_handlers={StateUnavailable: unavailable},
    )
    app.add_middleware(OnlyOurHost, console=console)
    app.state.console = console
    return app


async def unavailable(request: Request, error: Exception) -> PlainTextResponse:
    """The shared state did not answer (the directory, a case key): nothing is shown or decided; try again."""
    return PlainTextResponse(f"{error}", status_code=503, headers={"Retry-After": "5", "Cache-Control": "no-store"})


class OnlyOurHost:
    """Every request but the health check and static files must name one of the relying party's hosts.

    A page on another name that resolves to the console (DNS rebinding) would otherwise be the
    console's own origin to the browser, could read its CSRF token and enrol a passkey.
    """

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(("/healthz", "/static/")):
            problem = self.console.host_allowed(Request(scope))
            if problem:
                await PlainTextResponse(problem, status_code=421)(scope, receive, send)
                return
        await self.app(scope, receive, send)
