"""The `redress` command as a user runs it: a subprocess talking to the real dev server."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from redress.contract import TASK_QUEUE
from tests.helpers.cases import complaint, stage_is
from tests.helpers.processes import ROOT, redress_cli


async def test_submit_show_respond_from_the_command_line(run_worker, env, tmp_path):
    data = complaint(
        text="Package never arrived 快递丢失", customer={"id": f"c-cli-{uuid.uuid4().hex[:6]}", "language": "en"}
    )
    cid = data["complaint_id"]
    path = tmp_path / "complaint.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    async with run_worker(task_queue=TASK_QUEUE) as redress:
        code, out, err = await redress_cli(env, "submit", str(path))
        assert code == 0 and f"complaint-{cid}" in out, err
        code, _, err = await redress_cli(env, "submit", str(path))
        assert code == 1 and "already exists" in err

        await stage_is(redress, cid, "acknowledged")
        code, out, _ = await redress_cli(env, "show", cid)
        assert (
            code == 0
            and re.search(r"^queue\s+logistics$", out, re.M)
            and re.search(r"^stage\s+acknowledged$", out, re.M)
        )
        assert re.search(r"^first_response\s+\S+\s+open", out, re.M) and "\x1b[" not in out  # plain when piped

        code, out, _ = await redress_cli(env, "--json", "respond", cid, "--as", "li.na", "--message", "Tracing it")
        assert code == 0 and json.loads(out)["stage"] == "in_progress"
        code, _, err = await redress_cli(env, "feedback", cid, "--score", "9")
        assert code == 2 and "message.score" in err
        code, _, err = await redress_cli(env, "resolve", "NO-SUCH-CASE", "--as", "li.na", "--summary", "x")
        assert code == 1 and "no complaint NO-SUCH-CASE" in err

        code, out, _ = await redress_cli(
            env,
            "propose",
            cid,
            "--as",
            "li.na",
            "--kind",
            "coupon",
            "--amount",
            "20",
            "--reason",
            "late parcel",
            "--json",
        )
        assert code == 0 and json.loads(out)["status"] in ("approved", "executed")
        code, out, _ = await redress_cli(env, "withdraw", cid, "--by", "customer", "--reason", "it arrived")
        assert code == 0 and out.strip() == f"{cid}: withdrawn"
        code, out, _ = await redress_cli(env, "show", cid, "--json")
        shown = json.loads(out)
        assert shown["status"]["stage"] == "withdrawn" and shown["timeline"][-1]["kind"] == "withdrawn"
        code, _, err = await redress_cli(env, "withdraw", cid, "--by", "customer")
        assert code == 1 and "ended" in err

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(complaint(channel="pigeon")), encoding="utf-8")
    code, _, err = await redress_cli(env, "submit", str(bad))
    # the field is named, the value is not echoed (it could be anyone's personal data)
    assert code == 2 and "complaint.channel:" in err and "got a string of 6 characters" in err and "pigeon" not in err


async def test_the_readmes_demo_file_is_received_now_and_its_deadlines_are_ahead(run_worker, env, tmp_path):
    """The demo files say what happened, not when: `submit` takes them as received now (issue 20)."""
    data = json.loads((ROOT / "docs" / "examples" / "complaint-zh.json").read_text(encoding="utf-8"))
    assert "received_at" not in data
    data["complaint_id"] = f"DEMO-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "demo.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    async with run_worker(task_queue=TASK_QUEUE) as redress:
        before = datetime.now(UTC)
        code, out, err = await redress_cli(env, "submit", str(path))
        assert code == 0 and "received now" in out, err
        status = await stage_is(redress, data["complaint_id"], "acknowledged")
    received = datetime.fromisoformat(out.rsplit("(", 1)[1].rstrip(")\n"))
    assert before - timedelta(seconds=1) <= received <= datetime.now(UTC)
    assert status.escalation_level == 0
    assert all(d.breached_at is None and d.due > received for d in status.deadlines.values())
