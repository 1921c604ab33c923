"""backend.compare: the summary per run and the settings diff (app config + config.gin)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from compare_runs_data import GIN_A, two_runs
from rave_gui.backend.compare import (GIN_PREFIX, MISSING, config_diff, final_and_best, parse_gin,
                                      read_gin, run_duration, summarize, update_summary)

FIXTURE_GIN = Path(__file__).resolve().parents[1] / "fixtures" / "rave" / "smoke_run" / "config.gin"


@pytest.fixture
def runs(tmp_path):
    db, manager, ids = two_runs(tmp_path)
    yield manager, ids
    db.close()


# -- summary -------------------------------------------------------------------------

def test_summary_final_and_best_per_run(runs):
    manager, (a, b) = runs
    rows = summarize(manager, [a, b])
    assert [r["id"] for r in rows] == [a, b]
    ra, rb = rows
    assert (ra["name"], ra["status"], ra["step"], ra["max_steps"]) == ("run-a", "completed", 600, 1000)
    assert (rb["name"], rb["step"], rb["max_steps"]) == ("run-b", 600, 800)
    assert (ra["final_loss"], ra["final_loss_step"]) == (1.0, 600)
    assert (ra["best_loss"], ra["best_loss_step"]) == (1.0, 600)
    assert (ra["final_val_loss"], ra["best_val_loss"], ra["best_val_loss_step"]) == (0.7, 0.5, 400)
    assert (rb["best_loss"], rb["best_loss_step"]) == (2.0, 400)
    assert (rb["final_loss"], rb["final_loss_step"]) == (2.2, 600)
    assert (rb["best_val_loss"], rb["best_val_loss_step"]) == (0.3, 600)
    assert ra["duration"] is not None and ra["duration"] >= 0


def test_summary_of_a_run_without_metrics_or_start(tmp_path):
    db, manager, (a, _b) = two_runs(tmp_path)
    exp = manager.get_experiment(a)
    queued = manager.enqueue_training({"name": "later", "dataset_id": exp["dataset_id"]})
    row = summarize(manager, [queued])[0]
    assert row["status"] == "queued" and row["duration"] is None
    assert row["best_val_loss"] is None and row["final_loss"] is None and row["step"] == 0
    with pytest.raises(ValueError, match="no experiment 999"):
        summarize(manager, [999])
    db.close()


def test_duration_runs_to_completion_or_now():
    done = {"status": "completed", "started_at": "2025-01-01T10:00:00", "completed_at": "2025-01-01T11:30:05"}
    assert run_duration(done) == 5405
    live = {"status": "running", "started_at": "2025-01-01T10:00:00", "completed_at": None}
    assert run_duration(live, now=dt.datetime(2025, 1, 1, 10, 0, 42)) == 42
    assert run_duration({"status": "queued", "started_at": None}) is None
    assert run_duration({"status": "running", "started_at": "garbage"}) is None


def test_final_and_best_ignores_non_finite_and_keeps_first_best():
    stats = final_and_best([(1, 3.0), (2, 1.0), (3, float("nan")), (4, 1.0), (5, 2.0)])
    assert stats == {"final": 2.0, "final_step": 5, "best": 1.0, "best_step": 2}
    assert final_and_best([]) == {"final": None, "final_step": None, "best": None, "best_step": None}


def test_update_summary_folds_live_points(runs):
    manager, (a, _b) = runs
    row = summarize(manager, [a])[0]
    assert update_summary(row, {"step": 700, "loss": 0.9, "val_loss": 0.4})
    assert (row["step"], row["final_loss"], row["best_loss"], row["best_loss_step"]) == (700, 0.9, 0.9, 700)
    assert (row["best_val_loss"], row["best_val_loss_step"]) == (0.4, 700)
    assert update_summary(row, {"step": 800, "loss": 5.0})
    assert (row["final_loss"], row["best_loss"]) == (5.0, 0.9)
    assert not update_summary(row, {"loss": 1.0})  # no step: ignored


# -- config.gin ------------------------------------------------------------------------

def test_parse_gin_joins_multiline_values_and_skips_imports_and_comments():
    bindings = parse_gin(GIN_A)
    assert bindings == {
        "CAPACITY": "48", "N_BAND": "16",
        "discriminator.CombineDiscriminators.discriminators":
            "[@discriminator.MultiPeriodDiscriminator, @discriminator.MultiScaleDiscriminator]",
        "model.RAVE.phase_1_duration": "%PHASE_1_DURATION"}


def test_parse_gin_open_brackets_strings_and_scopes():
    text = ("a.b = [1,\n  2,\n  3]\nscope/c.d = 'x # not a comment'\n"
            "e.f = {'k': (1,\n 2)}\ng.h = \\\n  @i.j\n")
    assert parse_gin(text) == {"a.b": "[1, 2, 3]", "scope/c.d": "'x # not a comment'",
                               "e.f": "{'k': (1, 2)}", "g.h": "@i.j"}


def test_parse_the_config_gin_rave_writes():
    bindings = read_gin(FIXTURE_GIN)
    assert bindings["CAPACITY"] == "48"
    assert bindings["RATIOS"] == "[4, 2, 2, 2]"
    assert bindings["variational/blocks.EncoderV2.capacity"] == "%CAPACITY"
    assert len(bindings) == sum(1 for line in FIXTURE_GIN.read_text().splitlines() if " = " in line)
    assert read_gin(FIXTURE_GIN.parent / "missing.gin") == {}
    assert read_gin(None) == {}


# -- diff ------------------------------------------------------------------------------

def test_config_diff_flags_differing_app_and_gin_settings(runs):
    manager, ids = runs
    rows = {key: (values, differs) for key, values, differs in config_diff(manager, ids)}
    assert rows["batch_size"] == (["8", "16"], True)
    assert rows["max_steps"] == (["1000", "800"], True)
    assert rows["learning_rate"] == (["0.0001", "0.0001"], False)
    assert rows["base_config"] == (["v2", "v2"], False)
    assert rows["modifiers"] == (["[]", "[]"], False)
    assert "name" not in rows  # it is the column header
    assert rows[GIN_PREFIX + "CAPACITY"] == (["48", "64"], True)
    assert rows[GIN_PREFIX + "N_BAND"] == (["16", "16"], False)
    assert rows[GIN_PREFIX + "discriminator.CombineDiscriminators.discriminators"][1] is False
    assert rows[GIN_PREFIX + "model.RAVE.warmup"] == ([MISSING, "1000"], True)
    keys = [key for key, _, _ in config_diff(manager, ids)]
    assert keys.index("batch_size") < keys.index(GIN_PREFIX + "CAPACITY")  # app settings first


def test_config_diff_of_a_run_without_run_folder(runs):
    manager, (a, b) = runs
    manager.db.execute("UPDATE experiments SET run_dir = NULL WHERE id = ?", (b,))
    rows = {key: (values, differs) for key, values, differs in config_diff(manager, [a, b])}
    assert rows[GIN_PREFIX + "N_BAND"] == (["16", MISSING], True)
    single = config_diff(manager, [a])
    assert single and not any(differs for _, _, differs in single)
