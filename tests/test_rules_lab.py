"""The rules lab (issue 20): how rules treat a corpus, and what a change would do to it and to the running cases."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.helpers.cases import complaint, stage_is
from tests.helpers.processes import ROOT, redress_cli

CORPUS = """text,channel,label
快递送到时箱子破损，电水壶摔坏了，要求退款。,app,Damage
"Delivery is 10 days late, nobody answers my emails. Terrible service.",email,Late
客服态度很差，挂我电话，我要投诉！,phone,Staff
商品和描述不符，颜色完全不一样，要求换货。,app,Listing
每次登录都失败，登录页面一直转圈,web,Other
登录以后余额显示不对,web,Billing
"""
LABELS = "Damage: delivery\nLate: delivery\nStaff: attitude\nListing: quality\nOther: other\nBilling: billing\n"


def lab_here(capsys, *args: str) -> tuple[int, str, str]:
    """`redress rules lab ARGS` in this process (its exit code, stdout, stderr): the checks that need no new one."""
    from redress.cli import build_parser

    parsed = build_parser().parse_args(list(args))
    code = parsed.run(parsed)
    out, err = capsys.readouterr()
    return code, out, err


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redress", "rules", "lab", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_coverage_accuracy_and_keyword_candidates_of_a_labelled_corpus(tmp_path, capsys):
    (tmp_path / "corpus.csv").write_text(CORPUS, encoding="utf-8")
    (tmp_path / "labels.yaml").write_text(LABELS, encoding="utf-8")
    run = lab(str(tmp_path / "corpus.csv"), "--labels", str(tmp_path / "labels.yaml"), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["complaints"] == 6 and report["refused"] == []
    assert report["coverage"]["category"] == {
        "delivery": 0.3333,
        "other": 0.3333,
        "attitude": 0.1667,
        "quality": 0.1667,
    }
    assert report["coverage"]["queue"]["logistics"] == 0.3333
    left = report["coverage"]["left_to_default"]
    assert left["category"] == "other" and left["share"] == 0.3333
    assert {"word": "登录", "complaints": 2} in left["commonest_words"]  # Chinese segmented into words (jieba)
    accuracy = report["accuracy"]
    assert (accuracy["labelled"], accuracy["correct"], accuracy["share"]) == (6, 5, 0.8333)
    assert accuracy["confusion"]["billing"] == {"other": 1}  # the balance complaint has no billing keyword
    assert accuracy["confusion"]["delivery"] == {"delivery": 2}

    code, table, _ = lab_here(
        capsys, "rules", "lab", str(tmp_path / "corpus.csv"), "--labels", str(tmp_path / "labels.yaml")
    )
    assert code == 0
    assert "accuracy: 5 of 6 labelled complaints (83.3%)" in table
    assert "left to the default category (other): 2 (33.3%)" in table


def test_lines_that_are_not_complaints_are_refused_with_their_numbers(tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(
            [
                json.dumps({"text": "The parcel arrived damaged", "label": "delivery"}),
                "{not json",
                json.dumps(["a list"]),
                json.dumps({"text": "", "channel": "web"}),
                json.dumps({"text": "I was charged twice", "channel": "carrier pigeon"}),
                json.dumps({"text": "I was charged twice", "channel": "email", "label": "billing"}),
            ]
        ),
        encoding="utf-8",
    )
    run = lab(str(corpus), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["complaints"] == 2 and report["accuracy"]["share"] == 1.0
    refused = report["refused"]
    assert [r.split(":")[0] for r in refused] == ["line 2", "line 3", "line 5"]
    assert "not JSON" in refused[0] and "channel" in refused[2]
    assert report["without_text"] == 1  # nothing said: skipped and counted, not refused

    headless = tmp_path / "no-text.csv"
    headless.write_text("body,channel\nhello,web\n", encoding="utf-8")
    _, _, err = lab_here(capsys, "rules", "lab", str(headless))
    assert "needs a header row with a `text` column" in err

    oversized = tmp_path / "oversized.csv"  # beyond what the csv module reads in one field: the corpus ends there
    oversized.write_text("text,label\nI was charged twice,billing\n" + "x" * 200_000 + ",other\n", encoding="utf-8")
    code, out, _ = lab_here(capsys, "rules", "lab", str(oversized), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["complaints"] == 1 and report["refused"][0].startswith("line 3: not CSV")

    labels = tmp_path / "labels.yaml"
    labels.write_text("billing: [unclosed\n", encoding="utf-8")
    code, _, _ = lab_here(capsys, "rules", "lab", str(corpus), "--labels", str(labels))
    assert code == 2


DATA = ROOT / "tests" / "data"


def test_the_shipped_rules_get_the_ecommerce_corpus_right(capsys):
    """Issue 20's bar: >= 90% on a labelled zh/en corpus of every category, hard cases included."""
    run = lab(str(DATA / "ecommerce_complaints.jsonl"), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["complaints"] >= 300 and report["refused"] == []
    confusion = report["accuracy"]["confusion"]
    categories = {
        "quality", "attitude", "billing", "efficiency", "broken_promise", "process",
        "environment", "fraud", "privacy", "delivery", "other",
    }  # fmt: skip
    assert set(confusion) == categories and all(sum(row.values()) >= 24 for row in confusion.values())
    assert report["accuracy"]["share"] >= 0.90, report["accuracy"]["misses"]
    for category, row in confusion.items():  # no category left behind by the average
        assert row.get(category, 0) / sum(row.values()) >= 0.75, (category, row)
    # the held-out corpus, never used to tune the rules: how they generalise (an alarm, not a goal)
    held_out = json.loads(lab_here(capsys, "rules", "lab", str(DATA / "ecommerce_heldout.jsonl"), "--json")[1])
    assert set(held_out["accuracy"]["confusion"]) == categories
    assert held_out["accuracy"]["share"] >= 0.68


def test_a_real_taxonomy_the_cfpb_sample_with_its_rule_set():
    """docs/examples/cfpb-rules: the CFPB's products as categories, on the real sample's narratives."""
    examples = ROOT / "docs" / "examples"
    run = lab(
        str(DATA / "cfpb_complaints_sample.csv"),
        "--rules", str(examples / "cfpb-rules"),
        "--labels", str(examples / "cfpb-labels.yaml"),
        "--text-column", "Consumer complaint narrative",
        "--label-column", "Product",
        "--json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["without_text"] == 167  # rows with no narrative
    assert len(report["refused"]) == 1 and "at most 20000 characters" in report["refused"][0]  # as intake would
    accuracy = report["accuracy"]
    assert accuracy["labelled"] == 100 and accuracy["share"] >= 0.80, accuracy["misses"]
    # well above always answering the commonest product (credit reporting: 62 of the 100)
    always_the_commonest = sum(accuracy["confusion"]["credit_reporting"].values())
    assert accuracy["correct"] >= always_the_commonest + 15
    assert (
        subprocess.run(
            [sys.executable, "-m", "redress", "rules", "test", str(examples / "cfpb-rules")],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).returncode
        == 0
    )


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


def test_junk_is_refused_with_a_reason_never_a_traceback(tmp_path, capsys):
    deep = tmp_path / "deep.jsonl"
    deep.write_text(
        "[" * 100_000 + "]" * 100_000 + "\n" + json.dumps({"text": "charged twice"}) + "\n", encoding="utf-8"
    )
    code, out, _ = lab_here(capsys, "rules", "lab", str(deep), "--json")
    assert code == 0 and json.loads(out)["refused"] == ["line 1: not JSON"]
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text(json.dumps({"body": "charged twice"}) + "\n", encoding="utf-8")
    for corpus, extra in ((empty, ()), (elsewhere, ("--text-column", "nope"))):
        code, _, err = lab_here(capsys, "rules", "lab", str(corpus), *extra)
        assert code == 2 and "no complaint in" in err
    labels = tmp_path / "labels.yaml"
    labels.write_text("x: nosuchcategory\n", encoding="utf-8")
    code, _, err = lab_here(capsys, "rules", "lab", str(deep), "--labels", str(labels), "--html", str(tmp_path))
    assert "'x' maps to 'nosuchcategory', which no rule decides" in err
    assert code == 2 and "cannot write" in err  # a folder is no file to write
    for bad in (("--limit", "0"), ("--cases", "-5")):
        with pytest.raises(SystemExit) as refused:
            lab_here(capsys, "rules", "lab", str(deep), *bad)
        assert refused.value.code == 2
    code, _, err = lab_here(capsys, "--address", "127.0.0.1:1", "rules", "lab", "--open")
    assert code == 2 and "cannot reach Temporal" in err
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    routing = rules / "routing.yaml"
    routing.write_text(
        routing.read_text(encoding="utf-8").replace("keywords: [privacy,", 'keywords: [" ", privacy,', 1)
    )
    run = subprocess.run(
        [sys.executable, "-m", "redress", "rules", "check", str(rules)], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 2 and "keyword ' ' has no letter, digit or character of a word" in run.stderr
    assert "routing.yaml:" in run.stderr and "Traceback" not in run.stderr
