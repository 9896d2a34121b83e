"""Every benchmark, one after another, and bench/RESULTS.md with the machine facts: `make bench`.

Each benchmark runs in its own process (a fresh interpreter and dev server, so
one's memory does not count against the next), with --json; this script only
collects and writes. `BENCH_QUICK=1` runs them small (a smoke run).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK") == "1"


def run(script: str, *args: str) -> dict:
    command = [sys.executable, str(ROOT / "bench" / script), *args, "--json"]
    print("running", " ".join(command[1:]), file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    try:  # the JSON document is last, after any log lines (none: rfind gives -1, and the slice starts at 0)
        return json.loads(done.stdout[done.stdout.rfind("\n{") + 1 :])
    except ValueError:  # one benchmark's bad output must not cost the others' figures
        return {"error": "output was not JSON; its end: " + done.stdout[-1500:]}


# What profiling (py-spy --gil on bench/floor.py --only ours) found, and what changed; kept here so that
# `make bench` writes it into RESULTS.md beside the figures it explains.
FINDINGS = [
    "History: an auto-remedied case went from 98 events to 39, and to 37 with 1.0 (no patch marker). Steps run "
    "as local activities (one marker "
    "each, no workflow task of their own), search attributes are published once a workflow task settles, "
    "one deadline timer is kept instead of re-planned, and the survey window shares it (98 to 42). Then the "
    "customer notice that follows a step rides in that step's activity: the acknowledgement in triage's, "
    "the remedy's notice in the payment's, the closing notice in the record of the case's end (42 to 39). "
    "Such a notice is tried once there; a notifier that does not answer leaves it to the case's notice "
    "queue, so a notifier outage neither holds up nor repeats the step, and a refusal is recorded as before. "
    "The 37: start 1, 5 workflow tasks (15), 6 step markers, 1 timer, 5 upserts, 4 updates (8), completion 1.",
    "Approvals since issue 16: a decision is checked against the live approver directory, in one more local "
    "activity (one more marker, and one more activation of the workflow before the update answers). An "
    "approved case writes 45 events (46 before: the marker added, the patch's two gone). Under the bench's "
    "load that activation waits its turn like every other: on 2026-11-30's host (about 1.6 times slower than "
    "the 23rd's, by the floor's CPU per case) p99 under load was 262 and 268 ms in two runs, against 248 ms for "
    "the code before the change measured on that host the same day (idle p99 71 to 98 ms against 83).",
    "make soak (300 cases, 6 SIGKILLs) failed on 2026-11-30's host, before and after issue 16: a restarted worker "
    "took 100 workflow tasks at once (the SDK's default), could not work through them within a task's 10 s "
    "timeout, and they timed out and were retried again and again. A worker now takes 20 at once "
    "(REDRESS_WORKFLOW_TASK_SLOTS); the rest wait on the server's queue, which has no timeout. With that, and the "
    "client resending an update under the same id on the server's deadline, three soak runs ended with every "
    "case closed and none stuck (900 cases). 50 slots made approval latency worse, not better.",
    "10,000 open complaints on 2026-11-30 (issue 16's code) left one case stuck for good: its triage, a local "
    "activity, timed out three times on the worker overloaded by the intake and fell back to an ordinary "
    "activity; when the worker later lost the case from its cache and replayed it, the SDK raised that timeout "
    "as a bare TimeoutError instead of the ActivityError the live run had seen, the case took another path and "
    "failed on a non-determinism error. Both now fall back alike (workflows/steps.py); the case's history is a "
    "replay test (tests/histories/field-local-activity-timeout-fallback.json).",
    "Rule evaluation at 100 rules missed its goal on a slower host (253 µs). Profiled: the CEL variables were "
    "converted twice per complaint (once for the rules, again for the offers; the order alone costs about "
    "12 µs), every rule was visited even when none of its keywords was found, each weighed rule built its "
    "report as a pydantic model (a list of plain dicts validated once with the result is half the cost), "
    "language detection matched one letter at a time (runs of letters: the same count, half the time), and "
    "the tier's targets and escalation chains were worked out anew for every complaint (now once per rule "
    "set), and the keywords found (dozens, at about 1 µs each to convert) reach CEL only when a condition "
    "gets to them, through the library's variable resolver. Together about 40% less time per complaint "
    "(fastest passes 230 to 139 µs, run side by side).",
    "A query sent before a case's first workflow task completes costs 3 more events (the server makes a "
    "task for it); history_cost.py waits for the acknowledgement at the notification peer instead.",
    "Worker CPU: with PYTHONDONTWRITEBYTECODE set (on this machine, and in most container images) the "
    "workflow sandbox compiled our workflow modules from source for every new workflow: 16% of the "
    "worker's CPU. The worker now writes their bytecode at start. The customer record's pydantic models "
    "were rebuilt for every new customer (7%): they now live in a passed-through module. "
    "DataConverter.with_context, called for every payload of every workflow task, built a new pydantic "
    "converter each time only to throw it away (4%). Together: 167 to 130 ms of worker CPU per case.",
    "What is left of our own cost, by profile: the sandbox's per-payload context lookup and import hooks "
    "(SDK, about 20%), our workflow module's execution for each new workflow (8%), per-payload subject "
    "key lookups in SQLite (3%), rules and sentiment (5%).",
    "Reading the floor: both sides now cost the server the same 39 events per case. Until 2026-11-23 the bare "
    "case had 3 more, traced to two things in floor.py: ours answered the customer without a message (no "
    "notice) while the bare sent one, and both polled with a query while the case's first workflow task ran, "
    "which makes the server run one more task (3 events) on either side at random. Ours now answers with a "
    "message, and both wait for the first task through DescribeWorkflowExecution, which is no query. The "
    "two sides also take turns going first (the server's database grows as cases close). The ratio swings "
    "between rounds on this shared machine (0.87 to 1.3 in the runs of 2026-11-23). Read the CPU columns "
    "for the size of our own work: this process spends 15 to 30% more per case on ours than on the bare "
    "(our rules, models, logs and encryption); the throughput ratio stays near 1 because the server's share "
    "and the waits dominate. Five batches of 100 cases in a row on one server cost the same per case (135 to "
    "141 ms), so nothing grows with the number of cases handled.",
    "Approval latency under agents working back to back (20 of them, no pause) was p50 250 ms, p99 0.7 to "
    "2.5 s: the machine was saturated and the figure measured the task queue. The goal is now measured "
    "against a steady 2.5 complaints a second, about half of what the machine carries.",
    "The intake burst used to poll every case's status with a query: a thousand queries every 50 ms, each "
    "waiting behind the case's running workflow task, timed out. It now waits on a visibility count.",
    "The floor until 2026-11-23 left out the search-attribute upserts, the patch and the messages to the "
    "customer record and crisis watch, and so counted those Temporal calls as our overhead (ratio 0.55). "
    "The benches' complaints also all named one product, so the crisis rule declared a crisis 20 cases "
    "into every run; each now has its own customer, order and product.",
]


def machine() -> dict:
    memory = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0"
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    temporal = subprocess.run(
        [str(Path(sys.executable).parent / "temporal"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    import temporalio

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "temporalio": temporalio.__version__,
        "temporal_cli": temporal,
        "os": platform.platform(),
    }


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**missed**")


def unmeasured(result: dict) -> str:
    return "not measured in this run" if not result else "failed: " + result.get("error", "")[-600:]


def render(results: dict) -> str:
    facts = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Written by `make bench` on {results['at']}. The machine is shared and noisy, so "
        "goals are checked against medians over repeated runs, and throughput as a ratio to "
        "a bare Temporal workflow measured in the same run.",
        "",
        *[f"Note: {note}" for note in results.get("notes", [])],
        "",
        "## Machine",
        "",
        f"- CPU: {facts['cpu']}, {facts['cores']} cores; memory {facts['memory_gib']} GiB",
        f"- {facts['os']}; Python {facts['python']}; temporalio {facts['temporalio']}",
        f"- {facts['temporal_cli']} (the embedded dev server, SQLite file)",
        "",
    ]
    floor = results["floor"]
    lines += ["## 1. Lifecycle throughput against the bare floor", ""]
    if "error" in floor:
        lines += ["failed: see the log", ""]
    else:
        lines += [
            f"{floor['complaints_per_round']} CFPB complaints per round, {floor['concurrency']} worked at "
            "once, auto-remedied path; bare = every Temporal call ours makes (local activities, timer, "
            "updates, search-attribute upserts, the customer record's and crisis watch's messages) "
            "with empty bodies (bench/bare_workflow.py). CPU is milliseconds per case: this process "
            "(driver, client, worker) + the dev server. Events: the median history length of 20 of the "
            "round's cases, to show that both sides cost the server the same.",
            "",
            "| round | ours /s | bare /s | ratio | ours CPU ms | bare CPU ms | events ours / bare |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, r in enumerate(floor["rounds"], 1):
            cpu = {
                side: f"{r[side]['python_ms']} + {r[side]['server_ms']}" if side in r else "—"
                for side in ("ours_cpu", "bare_cpu")
            }
            events = " / ".join(
                f"{r[side]['events']:g}" if "events" in r.get(side, {}) else "—" for side in ("ours_cpu", "bare_cpu")
            )
            lines.append(
                f"| {n} | {r['ours_per_s']} | {r['bare_per_s']} | {r['ratio']} | {cpu['ours_cpu']} | "
                f"{cpu['bare_cpu']} | {events} |"
            )
        lines += [
            "",
            f"Median ratio **{floor['median_ratio']}** (goal ≥ {floor['goal']}: {verdict(floor['met'])}).",
            "",
        ]
    lines += shared_state_section(results)
    cost = results["history_cost"]
    lines += ["## 2. History cost: events per complaint", "", "| path | events | goal |", "|---|---|---|"]
    for path, row in cost.items():
        if path == "error":
            continue
        goal = "< 40: " + verdict(row["events"] < 40) if path == "auto_remedied" else ""
        lines.append(f"| {path} | {row['events']} | {goal} |")
    if "auto_remedied" in cost:
        kinds = ", ".join(f"{k} {v}" for k, v in cost["auto_remedied"]["by_type"].items())
        lines += ["", f"Auto-remedied, by event type: {kinds}.", ""]
    rules = results["rule_eval"]
    lines += ["## 3. Rule evaluation", ""]
    if "sizes" in rules:
        lines += [
            f"{rules['complaints']} complaints (CFPB English and generated Chinese), a "
            f"{rules['vocabulary']}-word keyword vocabulary, {rules['keywords_per_rule']} keywords per "
            "rule, every other rule with a CEL condition; `engine.triage` as the activity runs it."
            + (
                f" Host speed: {rules['host_loop_ms']} ms for the reference loop (bench/rule_eval.py host_speed; "
                "lower is faster)."
                if rules.get("host_loop_ms")
                else ""
            ),
            "",
            "| rules | µs per complaint (median) | range | load | goal |",
            "|---|---|---|---|---|",
        ]
        for size, row in rules["sizes"].items():
            goal = f"< {row['goal_us']} µs: {verdict(row['met'])}" if row["goal_us"] else ""
            lines.append(
                f"| {size} | {row['median_us']} | {row['min_us']}–{row['max_us']} | {row['load_seconds']} s | {goal} |"
            )
        lines.append("")
        if "shipped" in rules:
            real = rules["shipped"]
            lines += [
                f"The shipped rules ({real['rules']}, sentiment included as they read it) on the "
                f"{real['complaints']} labelled e-commerce complaints: {real['median_us']} µs per complaint, of which "
                f"sentiment about {real['sentiment_median_us']} µs.",
                "",
            ]
    held = results.get("open_complaints", {})
    lines += ["## 4. Open complaints held", ""]
    if "complaints" not in held:
        lines += [unmeasured(held), ""]
    else:
        lines += [
            f"{held['complaints']} complaints open at once, each with a first-response timer due "
            f"{held['hold_seconds'] / 60:g} minutes after they were all received; `worker.py` in its own "
            "process in embedded mode (dev server with its SQLite file).",
            "",
            f"- Submitted in {held['submit_seconds']} s ({held['submit_per_s']}/s); all acknowledged after "
            f"{held['all_acknowledged_seconds']} s.",
            f"- Worker RSS: idle {held['worker_rss_idle_mb']} MB, holding {held['worker_rss_holding_mb']} MB, "
            f"peak {held['worker_rss_peak_mb']} MB (goal < {held['goal_rss_mb']:g} MB: {verdict(held['met'])}).",
            f"- Server database: {held['database_holding_mb']} MB holding, "
            f"{held['database_after_firing_mb']} MB after the timers fired.",
            f"- From the due moment until every case had recorded its breach (Breached = true): "
            f"{held['seconds_until_all_fired']} s ({held['breached']} of {held['complaints']}).",
            "",
        ]
    latency = results.get("approval_latency", {})
    lines += ["## 5. Approval latency", ""]
    if "rounds" not in latency:
        lines += [unmeasured(latency), ""]
    else:
        lines += [
            f"{latency['approvals_per_round']} signed approvals per round, sent one after another; "
            "the `approve_remedy` update timed from call to answer. Loaded: "
            f"{latency['background_arrivals_per_s']} new complaints a second arrive meanwhile, each "
            "carried from submission to close (about half of what the machine carries at most).",
            "",
            "| round | idle p50 / p99 ms | loaded p50 / p99 ms | background cases/s |",
            "|---|---|---|---|",
        ]
        for n, r in enumerate(latency["rounds"], 1):
            lines.append(
                f"| {n} | {r['idle']['p50_ms']} / {r['idle']['p99_ms']} | {r['loaded']['p50_ms']} / "
                f"{r['loaded']['p99_ms']} | {r['background_cases_per_s']} |"
            )
        lines += [
            "",
            f"Median p99 under load **{latency['median_loaded_p99_ms']} ms** (goal < "
            f"{latency['goal_p99_ms']} ms: {verdict(latency['met'])}).",
            "",
        ]
    console = results.get("console", {})
    lines += ["## 5b. The console", ""]
    if "inbox" not in console:
        lines += [unmeasured(console), ""]
    else:
        lines += [
            f"{console['open_cases']} open cases on the embedded server, the worker and the console in one process "
            "(as `make run`). Pages requested one after another by a signed-in team lead; approvals made as the "
            "case page makes them (options, a passkey assertion, finish), each timed from the click until the "
            f"payment peer received the order, while {console['background_arrivals_per_s']} new complaints a second "
            "arrived and were carried to close.",
            "",
            "| | samples | p50 ms | p95 ms | goal |",
            "|---|---|---|---|---|",
            f"| inbox | {console['inbox']['samples']} | {console['inbox']['p50_ms']} | "
            f"**{console['inbox']['p95_ms']}** | < {console['page_goal_p95_ms']:g} |",
            f"| case page | {console['case_page']['samples']} | {console['case_page']['p50_ms']} | "
            f"**{console['case_page']['p95_ms']}** | < {console['page_goal_p95_ms']:g} |",
            f"| click to payment order | {console['click_to_payment']['samples']} | "
            f"{console['click_to_payment']['p50_ms']} | **{console['click_to_payment']['p95_ms']}** | "
            f"< {console['click_goal_p95_ms']:g} |",
            "",
            f"Goals: {verdict(console['met'])}.",
            "",
        ]
    burst = results["throughput"]
    lines += ["## 6. Intake burst, lifecycle and report reading", ""]
    if "error" in burst:
        lines += ["The run failed; the end of its error output:", "", "```", burst["error"][-600:].strip(), "```", ""]
    for extra in results.get("throughput_smaller", []):
        lines += [
            f"- Smaller run, {extra['complaints']} complaints: acknowledged at {extra['intake_per_s']}/s, "
            f"closed at {extra['lifecycle_per_s']}/s, report {extra['report_per_s']} cases/s, "
            f"peak RSS {extra['peak_rss_mb']} MB.",
            "",
        ]
    if "error" not in burst:
        lines += [
            f"- {burst['complaints']} complaints (CFPB texts) submitted at once: all acknowledged in "
            f"{burst['intake_seconds']} s ({burst['intake_per_s']}/s).",
            f"- The same number carried to close, {burst['lifecycle_concurrency']} at a time: "
            f"{burst['lifecycle_seconds']} s ({burst['lifecycle_per_s']}/s).",
            f"- Report: {burst['report_cases']} cases read and summarized at {burst['report_per_s']} cases/s.",
            f"- Peak RSS of the client and worker process: {burst['peak_rss_mb']} MB.",
            "",
        ]
    lines += ["## What profiling found, and what changed", "", *[f"- {finding}" for finding in FINDINGS], ""]
    return "\n".join(lines)


def shared_state_section(results: dict) -> list[str]:
    """1b: the floor again with the shared state in PostgreSQL, and what a case key costs per payload there."""
    floor, lookup = results.get("floor_postgres"), results.get("state_lookup")
    if not floor and not lookup:
        return []
    lines = ["## 1b. With the shared state in PostgreSQL (REDRESS_STATE_URL)", ""]
    if floor and "error" not in floor:
        ratios = ", ".join(str(r["ratio"]) for r in floor["rounds"])
        lines += [
            f"The same floor, ours with every case key looked up in a real PostgreSQL on 127.0.0.1 (never "
            f"cached: erasure): rounds {ratios}; median ratio **{floor['median_ratio']}** (goal ≥ "
            f"{floor['goal']}: {verdict(floor['met'])}); ours {floor['median_ours_per_s']}/s against bare "
            f"{floor['median_bare_per_s']}/s.",
            "",
        ]
    elif floor:
        lines += ["The floor with PostgreSQL failed: see the log.", ""]
    if lookup and "error" not in lookup:
        local, shared = lookup["local"], lookup["postgresql"]
        lines += [
            f"Per payload, medians of {lookup['calls']} calls (bench/state_lookup.py):",
            "",
            "| | local (SQLite) µs | PostgreSQL µs |",
            "|---|---|---|",
            f"| case-key lookup (read, unwrap) | {local['lookup_us']} | {shared['lookup_us']} |",
            f"| codec call: seal and open a 1 KB payload | {local['codec_call_us']} | {shared['codec_call_us']} |",
            f"| erasure of one case, with what follows it | {local['erasure_us']} | {shared['erasure_us']} |",
            "",
        ]
    return lines


def rerender() -> None:
    """Write RESULTS.md again from results.json (after adding a run by hand with --add-throughput FILE)."""
    path = ROOT / "bench" / "results.json"
    results = json.loads(path.read_text(encoding="utf-8"))
    for flag, key in (
        ("--add-floor", "floor"),
        ("--add-floor-postgres", "floor_postgres"),
        ("--add-state-lookup", "state_lookup"),
        ("--add-rule-eval", "rule_eval"),
        ("--add-history-cost", "history_cost"),
        ("--add-approval-latency", "approval_latency"),
    ):
        if flag in sys.argv:
            results[key] = json.loads(Path(sys.argv[sys.argv.index(flag) + 1]).read_text(encoding="utf-8"))
            path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if "--add-console" in sys.argv:
        results["console"] = json.loads(Path(sys.argv[sys.argv.index("--add-console") + 1]).read_text(encoding="utf-8"))
        path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    if "--add-throughput" in sys.argv:
        extra = json.loads(Path(sys.argv[sys.argv.index("--add-throughput") + 1]).read_text(encoding="utf-8"))
        results.setdefault("throughput_smaller", []).append(extra)
        path.write_text(json.dumps(results, indent=2), encoding="utf-8")
    (ROOT / "bench" / "RESULTS.md").write_text(render(results), encoding="utf-8")


def main() -> None:
    if "--rerender" in sys.argv:
        rerender()
        return
    results = {
        "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "rule_eval": run("rule_eval.py", "--repeats", "2" if QUICK else "15"),
        "history_cost": run("history_cost.py"),
        "floor": run("floor.py", "30" if QUICK else "200", "--rounds", "1" if QUICK else "3"),
        "floor_postgres": run("floor.py", "30" if QUICK else "200", "--rounds", "1" if QUICK else "3", "--postgres"),
        "state_lookup": run("state_lookup.py", "500" if QUICK else "5000"),
        "throughput": run("throughput.py", "50" if QUICK else "1000"),
        "approval_latency": run("approval_latency.py", "20" if QUICK else "200", "--rounds", "1" if QUICK else "3"),
        "console": run("console.py", *(["--open", "100", "--pages", "20", "--clicks", "10"] if QUICK else [])),
        # 10,000 takes about half an hour: BENCH_OPEN=N to change it
        "open_complaints": run(
            "open_complaints.py",
            os.environ.get("BENCH_OPEN", "200" if QUICK else "10000"),
            "--hold-minutes",
            "2" if QUICK else "25",
        ),
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (ROOT / "bench" / "RESULTS.md").write_text(render(results), encoding="utf-8")
    print((ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
