"""run.json's stage table accounts for the whole run: the run-wide stages (process start, scan,
model, duplicate check, quality, writing, report) and each group's own add up to the wall time
measured outside the process, and a run's clock is its own."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import TreeFactory
from repsample import progress as timing

RUN_WIDE = {"start", "scan", "model", "duplicates", "quality", "write", "report", timing.UNTIMED}


def test_stages_add_up_and_the_rest_is_other() -> None:
    with timing.run_clock(startup=0.25) as clock:
        with timing.timed("scan"):
            time.sleep(0.05)
        with timing.timed("scan"):  # a stage that runs twice adds up
            time.sleep(0.05)
        time.sleep(0.1)  # no stage: "other"
        table = clock.table({"g": {"embed": 0.0}})
    assert table["start"] == 0.25
    assert 0.1 <= table["scan"] < 0.2
    assert 0.1 <= table[timing.UNTIMED] < 0.2
    assert set(table) == {"start", "scan", timing.UNTIMED}


def test_a_nested_run_keeps_the_open_clock_and_a_stage_outside_any_run_records_nothing() -> None:
    with timing.timed("scan"):  # no run: nothing to add to, nothing raised
        pass
    with timing.run_clock(startup=1.0) as outer, timing.run_clock() as inner:
        assert inner is outer and timing.current_clock() is outer  # the command line's clock serves select
    assert timing.current_clock() is not outer and timing.current_clock().seconds == {}


def test_each_thread_times_its_own_run() -> None:
    """Two library runs in threads: each stage lands in its own run's table."""
    tables: dict[str, dict[str, float]] = {}

    def run(name: str, stage: str) -> None:
        with timing.run_clock() as clock:
            with timing.timed(stage):
                time.sleep(0.02)
            tables[name] = dict(clock.seconds)

    threads = [threading.Thread(target=run, args=(n, s)) for n, s in (("a", "scan"), ("b", "report"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(tables["a"]) == {"scan"} and set(tables["b"]) == {"report"}


def test_start_counts_from_the_first_import_not_the_process() -> None:
    """Time before repsample's import is not the command's: a process that waited first (or a
    shell that ran other commands, then exec'd this one) does not show it as start."""
    code = ("import time; time.sleep(0.4); import repsample.progress as p; time.sleep(0.2); "
            "print(p.since_import())")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    assert 0.2 <= float(out.stdout) < min(0.4, wall - 0.4)
    later = "import repsample.progress as p; print(p.since_import())"
    exec_code = f"sleep 0.5; exec {sys.executable} -c '{later}'"
    out = subprocess.run(["sh", "-c", exec_code], capture_output=True, text=True, check=True)
    assert 0 <= float(out.stdout) < 0.5


def test_run_json_accounts_for_the_whole_command(make_tree: TreeFactory, tmp_path: Path) -> None:
    """The real CLI, default model, fresh cache: run-wide and per-group seconds add up to the
    wall time seen from outside, less the process's exit (nothing else is left out)."""
    root = make_tree({"train/a": 14, "train/b": 10})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "repsample", "select", str(root), str(out), "--per-class", "5",
               "--cache", str(tmp_path / "c.sqlite"), "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    record = json.loads((out / "run.json").read_text())
    run_wide = record["seconds"]
    assert set(run_wide) == RUN_WIDE and all(v >= 0 for v in run_wide.values())
    assert run_wide["start"] > 0  # the imports and the options, before select began
    groups = sum(sum(g["seconds"].values()) for g in record["groups"].values())
    accounted = sum(run_wide.values()) + groups
    assert accounted <= wall
    assert wall - accounted < max(1.0, 0.2 * wall)  # the exit: interpreter teardown
    html = (out / "report.html").read_text()
    stages = html.split("Time per stage", 1)[1].split("</div><div class=\"legend\">", 1)[1]
    for name in ("start", "scan", "duplicates", "hash", "embed", "select", "thumbnails"):
        assert f"</i>{name} " in stages


def test_a_hand_edited_stage_table_is_shown_without_what_is_not_a_number(
        make_tree: TreeFactory, tmp_path: Path) -> None:
    from repsample import select
    from repsample.report import build_report

    root = make_tree({"a": 8})
    out = tmp_path / "out"
    select(root, out, per_class=3, cache=tmp_path / "c.sqlite", report=False)
    record = json.loads((out / "run.json").read_text())
    record["seconds"] = {"scan": 2.5, "model": "slow", "write": -1, "start": float("nan"), "quality": True}
    (out / "run.json").write_text(json.dumps(record))
    html = build_report(out).read_text()
    legend = html.split("Time per stage", 1)[1]
    assert "</i>scan 2.5" in legend
    assert not any(f"</i>{name} " in legend for name in ("model", "write", "start", "quality"))
