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
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUICK = os.environ.get("BENCH_QUICK") == "1"


def run(script: str, *args: str) -> dict:
    command = [sys.executable, str(ROOT / "bench" / script), *args, "--json"]
    print("running", " ".join(command[1:]), file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout[done.stdout.rindex("\n{") + 1:])  # after the worker's log lines


def machine() -> dict:
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "0")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    temporal = subprocess.run([str(Path(sys.executable).parent / "temporal"), "--version"], capture_output=True,
                              text=True, check=False).stdout.strip()
    import temporalio

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(int(memory) / 1024 / 1024, 1),
            "python": platform.python_version(), "temporalio": temporalio.__version__, "temporal_cli": temporal,
            "os": platform.platform()}


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**missed**")


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
        lines += [f"{floor['complaints_per_round']} complaints per round, {floor['concurrency']} worked at once, "
                  "auto-remedied path; bare = the same activities, updates and timers with empty bodies.", "",
                  "| round | ours /s | bare /s | ratio |", "|---|---|---|---|"]
        for n, r in enumerate(floor["rounds"], 1):
            lines.append(f"| {n} | {r['ours_per_s']} | {r['bare_per_s']} | {r['ratio']} |")
        lines += ["", f"Median ratio **{floor['median_ratio']}** (goal ≥ {floor['goal']}: {verdict(floor['met'])}).", ""]
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
        lines += [f"{rules['complaints']} complaints (CFPB English and generated Chinese), a "
                  f"{rules['vocabulary']}-word keyword vocabulary, {rules['keywords_per_rule']} keywords per "
                  "rule, every other rule with a CEL condition; `engine.triage` as the activity runs it.", "",
                  "| rules | µs per complaint (median) | range | load | goal |", "|---|---|---|---|---|"]
        for size, row in rules["sizes"].items():
            goal = f"< {row['goal_us']} µs: {verdict(row['met'])}" if row["goal_us"] else ""
            lines.append(f"| {size} | {row['median_us']} | {row['min_us']}–{row['max_us']} | "
                         f"{row['load_seconds']} s | {goal} |")
        lines.append("")
    burst = results["throughput"]
    lines += ["## 6. Intake burst, lifecycle and report reading", ""]
    if "error" in burst:
        lines += ["The run failed; the end of its error output:", "", "```", burst["error"][-600:].strip(), "```", ""]
    for extra in results.get("throughput_smaller", []):
        lines += [f"- Smaller run, {extra['complaints']} complaints: acknowledged at {extra['intake_per_s']}/s, "
                  f"closed at {extra['lifecycle_per_s']}/s, report {extra['report_per_s']} cases/s, "
                  f"peak RSS {extra['peak_rss_mb']} MB.", ""]
    if "error" not in burst:
        lines += [f"- {burst['complaints']} complaints (CFPB texts) submitted at once: all acknowledged in "
                  f"{burst['intake_seconds']} s ({burst['intake_per_s']}/s).",
                  f"- The same number carried to close, {burst['lifecycle_concurrency']} at a time: "
                  f"{burst['lifecycle_seconds']} s ({burst['lifecycle_per_s']}/s).",
                  f"- Report: {burst['report_cases']} cases read and summarized at {burst['report_per_s']} cases/s.",
                  f"- Peak RSS of the client and worker process: {burst['peak_rss_mb']} MB.", ""]
    lines += ["## Not measured yet", "",
              "- 4. 10,000 open complaints held (worker RSS, database size, time for their timers to fire).",
              "- 5. Approval latency p50/p99 under background load.", ""]
    return "\n".join(lines)


def rerender() -> None:
    """Write RESULTS.md again from results.json (after adding a run by hand with --add-throughput FILE)."""
    path = ROOT / "bench" / "results.json"
    results = json.loads(path.read_text(encoding="utf-8"))
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
        "at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "rule_eval": run("rule_eval.py", "--repeats", "2" if QUICK else "7"),
        "history_cost": run("history_cost.py"),
        "floor": run("floor.py", "30" if QUICK else "200", "--rounds", "1" if QUICK else "3"),
        "throughput": run("throughput.py", "50" if QUICK else "1000"),
    }
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (ROOT / "bench" / "RESULTS.md").write_text(render(results), encoding="utf-8")
    print((ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
