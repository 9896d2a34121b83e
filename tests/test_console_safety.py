"""The console's doors, over plain HTTP: sign-in required, CSRF and origin checks, headers, languages, quiet logs.

Behind an identity-aware proxy the console takes the person from a trusted header;
these tests use that mode (no browser needed) against the real server and worker.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.helpers.browser import console
from tests.helpers.cases import open_case, stage_is
from tests.helpers.rules import write_rules

HEADER = "X-Auth-Request-Preferred-Username"


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def test_pages_need_a_person_and_say_so_in_their_language(run_worker, tmp_path):
    rules = write_rules(tmp_path / "rules")
    async with (
        run_worker(rules=rules) as redress,
        console(redress, rules) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        away = await http.get("/inbox")
        assert away.status_code == 303 and away.headers["location"] == "/signin"
        page = await http.get("/signin", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert "<title>登录" in page.text
        assert "<title>Sign in" in (await http.get("/signin", headers={"Accept-Language": "en"})).text
        switched = await http.get("/lang", params={"to": "zh", "next": "//evil.example"})
        assert switched.headers["location"] == "/inbox"  # never a way off the console
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        cookie = away.headers["set-cookie"].lower()  # the first answer gives the session cookie
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert page.headers["x-content-type-options"] == "nosniff"


async def test_routine_actions_are_the_signed_in_persons_and_need_the_pages_token(run_worker, tmp_path, capfd):
    rules = write_rules(tmp_path / "rules")
    marker = f"MKconsole{uuid.uuid4().hex[:8]}"
    async with run_worker(rules=rules) as redress, console(redress, rules, trusted_header=HEADER) as url:
        cid = await open_case(redress)
        async with httpx.AsyncClient(base_url=url, headers={HEADER: "li.na"}) as http:
            page = await http.get(f"/cases/{cid}")
            assert page.status_code == 200 and cid in page.text and ">li.na<" in page.text
            token = csrf_of(page.text)
            stale = await http.post(f"/cases/{cid}/respond", data={"message": marker, "csrf": "forged"})
            assert stale.status_code == 303
            assert "stale or not from this console" in (await http.get(f"/cases/{cid}")).text
            elsewhere = await http.post(
                f"/cases/{cid}/respond",
                data={"message": marker, "csrf": token},
                headers={"Origin": "https://evil.example"},
            )
            assert elsewhere.status_code == 303
            assert not any(e.kind == "response" for e in await redress.timeline(cid))

            done = await http.post(f"/cases/{cid}/respond", data={"message": marker, "csrf": token})
            assert done.status_code == 303 and done.headers["location"] == f"/cases/{cid}"
            # the old page's background poll may fetch the live part before the browser follows the redirect:
            # the message on what was done is still there for the page itself
            assert (await http.get(f"/cases/{cid}", params={"part": "live"})).status_code == 200
            assert 'id="flash">response recorded</p>' in (await http.get(f"/cases/{cid}")).text
            await stage_is(redress, cid, "in_progress")
            response = next(e for e in await redress.timeline(cid) if e.kind == "response")
            assert response.actor == "agent:li.na"

            refused = await http.post(
                f"/cases/{cid}/severity", data={"severity": "cosmic", "reason": marker, "csrf": token}
            )
            assert refused.status_code == 303
            assert "refused: severity" in (await http.get(f"/cases/{cid}")).text
        async with httpx.AsyncClient(base_url=url, headers={HEADER: "../etc"}) as http:
            assert (await http.get("/inbox")).headers["location"] == "/signin"  # not a directory name: nobody
    out, err = capfd.readouterr()
    assert marker not in out and marker not in err


async def test_the_console_answers_only_its_own_origin_and_junk_gets_refusals_not_errors(run_worker, tmp_path):
    rules = write_rules(tmp_path / "rules")
    async with (
        run_worker(rules=rules) as redress,
        console(redress, rules) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        rebound = await http.get("/signin", headers={"Host": "evil.example:8090"})  # DNS rebinding
        assert rebound.status_code == 421 and "relying_party" in rebound.text
        assert (await http.get("/healthz", headers={"Host": "evil.example"})).status_code == 200
        page = await http.get("/signin")
        token = csrf_of(page.text) if 'name="csrf"' in page.text else page.text.split('data-csrf="')[1].split('"')[0]
        headers = {"X-CSRF-Token": token, "Content-Type": "application/json"}
        foreign = await http.post(
            "/passkeys/options", json={"person": "chen.jing"}, headers={**headers, "Origin": "http://evil.example"}
        )
        assert foreign.status_code == 403
        deep = await http.post("/signin/options", content=b"[" * 60_000, headers=headers)
        assert deep.status_code == 403  # unreadable: refused like a missing token, not a server error
        start = (await http.post("/signin/options", json={"person": "wang.fang"}, headers=headers)).json()
        junk = await http.post(
            "/signin/finish", json={"ceremony": start["ceremony"], "credential": {"id": "x"}}, headers=headers
        )
        assert junk.status_code == 403 and "sign-in refused" in junk.json()["refused"]
        nobody = (await http.post("/signin/options", json={"person": "no.such.person"}, headers=headers)).json()
        assert set(nobody) == set(start)  # the same answer: the page does not tell who is in the directory


async def test_a_proxy_header_naming_someone_outside_the_directory_signs_nobody_in(run_worker, tmp_path):
    rules = write_rules(tmp_path / "rules")
    async with run_worker(rules=rules) as redress, console(redress, rules, trusted_header=HEADER) as url:
        async with httpx.AsyncClient(base_url=url, headers={HEADER: "random.employee"}) as http:
            assert (await http.get("/inbox")).headers["location"] == "/signin"
        async with httpx.AsyncClient(base_url=url, headers={HEADER: "zhang.wei"}) as http:
            assert (await http.get("/report", params={"since": "9999999999999d"})).status_code == 200


def test_enrolment_is_for_a_console_on_localhost_without_a_proxy(tmp_path):
    from redress.console import ConsoleServer, Settings

    async def never():
        raise AssertionError

    with pytest.raises(ValueError, match="trusted proxy header"):
        ConsoleServer(never, Settings(rules=tmp_path, enroll=True, trusted_header=HEADER))
    with pytest.raises(ValueError, match="serve on localhost"):
        ConsoleServer(never, Settings(rules=tmp_path, enroll=True), host="0.0.0.0")


def test_anonymous_sessions_never_push_out_a_signed_in_person(monkeypatch):
    from redress.console import sessions

    monkeypatch.setattr(sessions, "MAX_SESSIONS", 5)
    pool = sessions.Sessions()
    signed = pool.new()
    signed.person = "wang.fang"
    for _ in range(50):  # anyone can make these: one per request without a cookie
        pool.new()
    assert pool.get(signed.id) is signed
