"""The rules lab (issue 20): how the shipped rules treat a corpus, before a change ships. No server needed."""

from __future__ import annotations

import json
import subprocess
import sys

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


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redress", "rules", "lab", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_coverage_accuracy_and_keyword_candidates_of_a_labelled_corpus(tmp_path):
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

    table = lab(str(tmp_path / "corpus.csv"), "--labels", str(tmp_path / "labels.yaml"))
    assert table.returncode == 0, table.stderr
    assert "accuracy: 5 of 6 labelled complaints (83.3%)" in table.stdout
    assert "left to the default category (other): 2 (33.3%)" in table.stdout


def test_lines_that_are_not_complaints_are_refused_with_their_numbers(tmp_path):
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
    run = lab(str(headless))
    assert "needs a header row with a `text` column" in run.stderr

    oversized = tmp_path / "oversized.csv"  # beyond what the csv module reads in one field: the corpus ends there
    oversized.write_text("text,label\nI was charged twice,billing\n" + "x" * 200_000 + ",other\n", encoding="utf-8")
    run = lab(str(oversized), "--json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["complaints"] == 1 and report["refused"][0].startswith("line 3: not CSV")

    labels = tmp_path / "labels.yaml"
    labels.write_text("billing: [unclosed\n", encoding="utf-8")
    run = lab(str(corpus), "--labels", str(labels))
    assert run.returncode == 2 and "Traceback" not in run.stderr


DATA = ROOT / "tests" / "data"


def test_the_shipped_rules_get_the_ecommerce_corpus_right():
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
    held_out = json.loads(lab(str(DATA / "ecommerce_heldout.jsonl"), "--json").stdout)
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
