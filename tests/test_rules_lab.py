"""The rules lab (issue 20): how rules treat a corpus, and what a change would do to it and to the running cases."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.helpers.lab import DATA, lab, lab_here
from tests.helpers.processes import ROOT

CORPUS = """text,channel,label
快递送到时箱子破损，电水壶摔坏了，要求退款。,app,Damage
"Delivery is 10 days late, nobody answers my emails. Terrible service.",email,Late
客服态度很差，挂我电话，我要投诉！,phone,Staff
商品和描述不符，颜色完全不一样，要求换货。,app,Listing
每次登录都失败，登录页面一直转圈,web,Other
登录以后余额显示不对,web,Billing
"""
LABELS = "Damage: delivery\nLate: delivery\nStaff: attitude\nListing: quality\nOther: other\nBilling: billing\n"


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
