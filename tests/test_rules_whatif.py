"""The rules lab's what-if (issue 20): what a rule change would do to a corpus and to the running cases."""

from __future__ import annotations

import json
import re
import shutil
import uuid

from tests.helpers.cases import complaint, stage_is
from tests.helpers.lab import DATA, lab, lab_here
from tests.helpers.processes import ROOT, redress_cli


def candidate_rules(tmp_path, source=ROOT / "rules"):
    """These rules with two edits an admin might make: refunds to a queue of their own, quality answered in 12h."""
    folder = tmp_path / "candidate"
    shutil.copytree(source, folder)
    routing = folder / "routing.yaml"
    text = routing.read_text(encoding="utf-8")
    assert "    set: {category: billing, queue: billing}\n" in text
    routing.write_text(
        text.replace("    set: {category: billing, queue: billing}\n", "    set: {category: billing, queue: refunds}\n")
    )
    tiers = folder / "tiers.yaml"
    text = tiers.read_text(encoding="utf-8")
    shipped = "  - {category: quality, severity: general, first_response: 24h}"
    faster = "  - {category: quality, severity: general, first_response: 12h}"
    tiers.write_text(
        text.replace(shipped, faster) if shipped in text else f"{text}targets:\n{faster}\n", encoding="utf-8"
    )
    return folder


def test_what_if_lists_what_a_rule_change_would_do_to_a_corpus(tmp_path, capsys):
    page = tmp_path / "lab.html"
    run = lab(
        str(DATA / "ecommerce_complaints.jsonl"),
        "--against",
        str(candidate_rules(tmp_path)),
        "--html",
        str(page),
        "--json",
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    what_if = report["what_if"]
    billing = report["coverage"]["category"]["billing"]
    general_quality = [c for c in what_if["changes"] if "deadlines" in c["changed"]]
    assert what_if["by_aspect"]["queue"] == len([c for c in what_if["changes"] if "queue" in c["changed"]]) > 0
    assert all(c["before"]["queue"] == "billing" and c["after"]["queue"] == "refunds" for c in what_if["changes"]
               if "queue" in c["changed"])  # fmt: skip
    # every billing complaint moves; a refund asked for with nothing else stays at the billing desk (fallback_queue)
    assert what_if["by_aspect"]["queue"] == round(billing * report["complaints"])
    assert general_quality and all(
        "first_response 1d" in c["before"]["deadlines"] and "first_response 12h" in c["after"]["deadlines"]
        for c in general_quality
    )
    assert what_if["by_aspect"]["category"] == 0 and what_if["category_moves"] == []
    assert report["against"]["accuracy"]["share"] == report["accuracy"]["share"]  # no category changed
    assert what_if["changed"] == len(what_if["changes"]) < what_if["compared"] == report["complaints"]

    corpus, candidate = str(DATA / "ecommerce_complaints.jsonl"), str(candidate_rules(tmp_path / "t"))
    _, table, _ = lab_here(capsys, "rules", "lab", corpus, "--against", candidate, "--limit", "1")
    assert f"what would change: {what_if['changed']} of {what_if['compared']} complaints" in table
    assert re.search(r"queue\s+" + str(what_if["by_aspect"]["queue"]), table)

    if shutil.which("chromium"):  # the page renders its charts (as the report's does), and a person can look at it
        from tests.test_report import _attribute_pairs, _chromium

        dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
        drawn = [(int(b), int(d)) for b, d in _attribute_pairs(dom)]
        assert len(drawn) == 5 and all(d == b and b > 0 for b, d in drawn), drawn  # shares x3, right, aspects
        assert "What would change" in dom and "queue" in dom and "refunds" in dom
        shot = tmp_path / "lab.png"
        _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2600", page.as_uri())
        assert shot.stat().st_size > 20_000


async def test_what_if_for_the_running_cases_on_the_real_server(run_worker, env, tmp_path, rules_dir):
    """`--open`: every running case under the version it is pinned to, against what a retriage would decide."""
    texts = {
        "billing": "订单重复扣费，请尽快退款",
        "quality": "The kettle I bought stopped working after two days.",
        "delivery": "My parcel never arrived and the tracking has not moved for a week.",
    }
    async with run_worker() as redress:
        ids = {}
        for kind, text in texts.items():
            data = complaint(text=text, customer={"id": f"c-lab-{uuid.uuid4().hex[:6]}", "language": "en"})
            await redress.submit(data)
            ids[kind] = data["complaint_id"]
        for cid in ids.values():
            await stage_is(redress, cid, "acknowledged")
        before = {kind: await redress.status(cid) for kind, cid in ids.items()}
        assert before["billing"].queue == "billing" and before["quality"].category == "quality"

        data_dir = {"REDRESS_DATA": str(tmp_path / "data")}  # where the worker keeps the versions cases are pinned to
        queue = ("--task-queue", redress.task_queue)
        page = tmp_path / "open.html"
        candidate = str(candidate_rules(tmp_path, rules_dir))
        code, out, err = await redress_cli(
            env, *queue, "rules", "lab", "--open", "--against", candidate, "--html", str(page), "--json",
            environment=data_dir,
        )  # fmt: skip
        assert code == 0, err
        what_if = json.loads(out)["what_if"]
        assert what_if["compared"] == 3 and what_if["skipped"] == []
        changes = {c["ref"]: c for c in what_if["changes"]}
        assert set(changes) == {ids["billing"], ids["quality"]}, what_if  # the delivery case would not change
        assert changes[ids["billing"]]["changed"] == ["queue"]
        assert (changes[ids["billing"]]["before"]["queue"], changes[ids["billing"]]["after"]["queue"]) == (
            "billing",
            "refunds",
        )
        assert changes[ids["quality"]]["changed"] == ["deadlines"]
        assert "first_response 12h" in changes[ids["quality"]]["after"]["deadlines"]
        assert changes[ids["billing"]]["note"] == "acknowledged"  # a running case's stage, never its text
        shown = page.read_text(encoding="utf-8")
        assert ids["billing"] in shown and not any(text in shown for text in texts.values())

        # against the rules in force now: nothing would change (each case was triaged by this very version)
        code, out, err = await redress_cli(env, *queue, "rules", "lab", "--open", "--rules", str(rules_dir), "--json",
                                           environment=data_dir)  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["what_if"]["changed"] == 0
        # where the pinned versions are not kept, the cases are said to be skipped, not compared with other rules
        code, out, err = await redress_cli(env, *queue, "rules", "lab", "--open", "--json",
                                           environment={"REDRESS_DATA": str(tmp_path / "elsewhere")})  # fmt: skip
        assert code == 0, err
        skipped = json.loads(out)["what_if"]
        assert skipped["compared"] == 0 and len(skipped["skipped"]) == 3
        assert all("is not found here" in line for line in skipped["skipped"])
        # nothing was changed by looking: the cases are as they were
        after = {kind: await redress.status(cid) for kind, cid in ids.items()}
        assert {k: (s.queue, s.rule_version, s.deadlines) for k, s in after.items()} == {
            k: (s.queue, s.rule_version, s.deadlines) for k, s in before.items()
        }
