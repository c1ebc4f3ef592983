"""The recorder never breaks the recipe, and what it spills can always be replayed.

Issue 9: threads starting runs at once crashed the recipe (a race in the resource probe); a
NUL character in an error message cost a run and 99 others their records and made the spill
file unreplayable; one bad record blocked a whole spill file; a URL that differed only in its
query string was not replayed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from test_recorder import database_down  # same folder: the outage helper of the recorder tests

from warehouse.recorder import Recorder, replay_spill, shutdown
from warehouse.recorder.spill import SpillWriter, target_key


@pytest.fixture(autouse=True)
def spill_dir(tmp_path, monkeypatch):
    """Each test spills into its own folder; every recorder is closed afterwards."""
    path = tmp_path / "spill"
    monkeypatch.setenv("WAREHOUSE_SPILL_DIR", str(path))
    yield path
    shutdown()


def _count(wh, table: str) -> int:
    return int(wh.sql(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0])


# -- 200 threads x 20 runs ----------------------------------------------------------------------
_THREADS = textwrap.dedent("""
    import json, sys, threading
    from warehouse import Warehouse
    from warehouse.recorder import recipe_run, recorder_for, safety

    url, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    wh = Warehouse(url)
    start = threading.Barrier(threads)  # every thread starts its first run at once
    errors = []

    def work(t):
        try:
            start.wait()
            for i in range(runs):
                with recipe_run(wh, "threads", params={"thread": t}) as run:
                    with run.step("work") as step:
                        step.metric("items", i, thread=str(t))
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stats = recorder_for(wh).flush()
    print(json.dumps({"errors": errors[:5], "error_count": len(errors), "stats": stats,
                      "own_failures": safety.failure_counts}))
""")


@pytest.mark.slow
def test_200_threads_starting_runs_at_once_never_break_the_recipe(tmp_path, spill_dir):
    """A fresh process (the probe opens lazily: the race was on its first snapshots) on a
    DuckDB file; ~25 s on a loaded 2-vCPU machine, ~10 s idle."""
    url = f"duckdb:///{tmp_path / 'threads.duckdb'}"
    threads, runs = 200, 20
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _THREADS, url, str(threads), str(runs)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "WAREHOUSE_SPILL_DIR": str(spill_dir)})
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["error_count"] == 0, result["errors"]
    assert result["own_failures"] == {}  # fixed, not just caught: nothing was even logged
    stats = result["stats"]
    assert stats["lost"] == 0 and stats["rejected"] == 0 and stats["spilled"] == 0
    print(f"{threads} threads x {runs} runs: {elapsed:.1f} s")

    from warehouse import Warehouse

    with Warehouse(url) as wh:
        runs_ = wh.runs()
        assert len(runs_) == threads * runs and set(runs_["status"]) == {"succeeded"}
        assert runs_["cpu_user_us"].notna().all()  # the probe worked in every run
        assert _count(wh, "step_runs") == threads * runs
        assert _count(wh, "points") == threads * runs


# -- unstorable text --------------------------------------------------------------------------
BAD_TEXTS = ("nul\x00here", "lone \udcff surrogate", "both\x00\ud800")


def _odd_error(text: str) -> Exception:
    kind = type("OddError", (Exception,), {"__module__": f"mod_{text}"})
    return kind(f"message {text}")


def test_unstorable_text_while_the_database_is_down_replays_completely(wh, database_url,
                                                                       spill_dir):
    """Every text field the recorder produces carries NUL or a lone surrogate while the
    records go to a spill file; the user's own bad text is refused where it is written. The
    spill file then replays with nothing quarantined, and the text is stored cleaned."""
    rec = Recorder(wh, spill_dir=spill_dir, flush_interval=None)
    run_ids = []
    with database_down(wh, database_url):
        for text in BAD_TEXTS:
            with pytest.raises(Exception, match="message") as raised, \
                    rec.recipe_run("bad-text") as run:
                run_ids.append(run.run_id)
                run.attributes["note"] = text  # changed during the run: cleaned at its end
                run.attributes[text] = [text]
                for refused in (lambda t=text: run.step("s", labels={"t": t}),
                                lambda t=text: run.metric("m", 1, label=t),
                                lambda t=text: run.step("s", attributes={"a": t}),
                                lambda t=text: rec.recipe_run("r", params={"p": t})):
                    with pytest.raises(ValueError, match="NUL|UTF-8"):
                        refused()
                with run.step("fails") as step:
                    step.attributes["why"] = text
                    step.metric("m", 1)
                    raise _odd_error(text)
            assert "message" in str(raised.value)  # the recipe's own error, unchanged
        stats = rec.flush()
        assert stats["spilled"] > 0 and stats["rejected"] == 0
    report = replay_spill(wh, spill_dir)
    assert report["failed"] == [] and report["rejected"] == 0 and report["bad_lines"] == 0
    assert report["files"] >= 1 and not list(spill_dir.glob("*"))

    runs = wh.runs().set_index("run_id")
    assert sorted(runs.index) == sorted(run_ids)
    for run_id, text in zip(run_ids, BAD_TEXTS, strict=True):
        cleaned = text.replace("\x00", "\ufffd")
        cleaned = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in cleaned)
        row = runs.loc[run_id]
        assert row["status"] == "failed"
        assert row["error_message"] == f"message {cleaned}"
        assert row["error_type"] == f"mod_{cleaned}.OddError"
        attributes = row["attributes"] if isinstance(row["attributes"], dict) \
            else json.loads(row["attributes"])
        assert attributes["note"] == cleaned and attributes[cleaned] == [cleaned]
        [step] = wh.steps(run_id).to_dict("records")
        assert step["error_message"] == f"message {cleaned}"
    assert len(wh.points("m")) == len(BAD_TEXTS)
    rec.close()


# -- one bad record in 30,000 -------------------------------------------------------------------
def test_one_bad_record_in_30000_is_quarantined_then_fixed_and_replayed(wh, spill_dir):
    base = 1_780_000_000_000_000
    labels = (("recipe", "bulk"), ("host", "h"))
    items = [("points", "bulk", float(i), base + i, None, labels) for i in range(30_000)]
    items[12_345] = ("points", "bad metric!", 1.0, base + 12_345, None, labels)  # invalid name
    writer = SpillWriter(spill_dir, target_key(wh.url))
    writer.append(items)
    writer.close()

    started = time.perf_counter()
    report = replay_spill(wh, spill_dir)
    elapsed = time.perf_counter() - started
    print(f"30,000 points with 1 bad record replayed in {elapsed:.1f} s")
    assert report["failed"] == [] and report["points"] == 30_000
    assert report["rejected"] == 1 and report["written"] == 29_999
    assert _count(wh, "points") == 29_999
    assert not list(spill_dir.glob("*.ndjson"))
    [quarantine] = spill_dir.glob("*.rejected")
    assert report["quarantine_files"] == [str(quarantine)]
    lines = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["header", "points"]
    assert lines[0]["target"] == target_key(wh.url)
    assert lines[1]["metric"] == "bad metric!" and "metric" in lines[1]["_error"]

    # Without the fix, a re-try refuses it again and keeps it.
    again = replay_spill(wh, spill_dir, rejected=True)
    assert again["rejected"] == 1 and again["failed"] == [] and quarantine.exists()

    lines[1]["metric"] = "bulk"  # the fix
    quarantine.write_text("".join(json.dumps(line) + "\n" for line in lines))
    fixed = replay_spill(wh, spill_dir, rejected=True)
    assert fixed["rejected"] == 0 and fixed["written"] == 1 and fixed["failed"] == []
    assert not list(spill_dir.glob("*"))
    assert _count(wh, "points") == 30_000


def test_spill_for_the_same_database_with_query_options_is_replayed(wh, database_url,
                                                                   spill_dir):
    point = ("points", "m", 1.0, 1_780_000_000_000_000, None, (("recipe", "q"),))
    option = "connect_timeout=5" if database_url.startswith("postgresql") else "threads=1"
    mine = SpillWriter(spill_dir, target_key(f"{database_url}?{option}"))
    mine.append([point])
    mine.close()
    other = SpillWriter(spill_dir, target_key(f"{database_url}-other?{option}"))
    other.append([point])
    other.close()
    report = replay_spill(wh, spill_dir)
    assert (report["files"], report["other_target"], report["failed"]) == (1, 1, [])
    assert _count(wh, "points") == 1
    assert [p.name for p in spill_dir.glob("*.ndjson")] == [other.path.name]
