"""TrainingManager: plain Python over the database (no QApplication, no Qt objects)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.training import DEFAULTS, STATUSES, TERMINAL, TrainingManager


@pytest.fixture
def manager(db, tmp_path) -> TrainingManager:
    return TrainingManager(db, runs_root=tmp_path / "runs")


@pytest.fixture
def dataset_id(db, fake_dataset) -> int:
    return DatasetManager(db).register(fake_dataset)


@pytest.fixture
def exp_id(manager, dataset_id) -> int:
    return manager.start_training({"name": "run", "dataset_id": dataset_id, "max_steps": 1000})


class FakeProcess:
    """Anything with stop(): what the manager needs from a TrainingProcess."""

    def __init__(self):
        self.stop_calls = 0

    def stop(self):
        self.stop_calls += 1


def count(db, table="experiments") -> int:
    return db.query_one(f"SELECT count(*) FROM {table}")[0]


# -- start_training ------------------------------------------------------------------

def test_start_training_creates_a_running_record(manager, db, dataset_id, tmp_path):
    exp_id = manager.start_training({"name": "  drums v2  ", "dataset_id": dataset_id,
                                     "max_steps": 2000.0, "modifiers": ["causal", "causal", "snake"],
                                     "overrides": [" PHASE_1_DURATION=1000 "], "device": "gpu:0"})
    exp = manager.get_experiment(exp_id)
    assert exp["name"] == "drums v2"
    assert exp["status"] == "running" and exp["completed_at"] is None and exp["started_at"]
    assert exp["dataset_id"] == dataset_id
    assert exp["metrics"] == {}
    config = exp["config"]
    assert isinstance(config, dict)
    assert config["max_steps"] == 2000 and isinstance(config["max_steps"], int)
    assert config["modifiers"] == ["causal", "snake"]
    assert config["overrides"] == ["PHASE_1_DURATION=1000"]
    assert config["device"] == "gpu:0"
    assert config["batch_size"] == DEFAULTS["batch_size"]
    assert config["base_config"] == DEFAULTS["base_config"]
    assert exp["out_dir"] == str(tmp_path / "runs" / str(exp_id))
    assert exp["log_path"] == str(tmp_path / "runs" / str(exp_id) / "train.log")
    assert [e["kind"] for e in manager.get_events(exp_id)] == ["started"]


def test_defaults_are_not_shared_between_configs(manager, dataset_id):
    a = manager.start_training({"name": "a", "dataset_id": dataset_id})
    manager.get_experiment(a)["config"]["modifiers"].append("causal")
    assert DEFAULTS["modifiers"] == []
    assert manager.get_experiment(a)["config"]["modifiers"] == []


@pytest.mark.parametrize("name", ["my run 1", 'say "hi"', "it's", "ünïcødé ✓ 音", "a  b", "x" * 80])
def test_names_with_spaces_quotes_and_unicode_are_accepted(manager, dataset_id, name):
    exp_id = manager.start_training({"name": name, "dataset_id": dataset_id})
    assert manager.get_experiment(exp_id)["name"] == name
    assert manager.get_experiment(exp_id)["config"]["name"] == name


INVALID = {
    "missing name": {"name": None},
    "empty name": {"name": "   "},
    "name not text": {"name": 42},
    "name with /": {"name": "a/b"},
    "name with backslash": {"name": "a\\b"},
    "name with newline": {"name": "a\nb"},
    "name starting with -": {"name": "-rf"},
    "name starting with .": {"name": ".hidden"},
    "200-char name": {"name": "n" * 200},
    "missing dataset": {"dataset_id": None},
    "unknown dataset": {"dataset_id": 999},
    "unknown project": {"project_id": 999},
    "unknown base_config": {"base_config": "v9"},
    "unknown modifier": {"modifiers": ["causal", "turbo"]},
    "modifiers as a string": {"modifiers": "causal"},
    "bad override": {"overrides": ["PHASE_1_DURATION"]},
    "override without value": {"overrides": ["X="]},
    "override as a string": {"overrides": "X=1"},
    "max_steps 0": {"max_steps": 0},
    "max_steps -5": {"max_steps": -5},
    "max_steps 1.5": {"max_steps": 1.5},
    "max_steps True": {"max_steps": True},
    "max_steps 10**12": {"max_steps": 10**12},
    "max_steps text": {"max_steps": "1000"},
    "batch 0": {"batch_size": 0},
    "batch 2000": {"batch_size": 2000},
    "lr 0": {"learning_rate": 0},
    "lr nan": {"learning_rate": math.nan},
    "lr inf": {"learning_rate": math.inf},
    "lr x": {"learning_rate": "x"},
    "lr 1": {"learning_rate": 1},
    "lr True": {"learning_rate": True},
    "device gpu": {"device": "gpu"},
    "device tpu": {"device": "tpu"},
    "device gpu:x": {"device": "gpu:x"},
    "workers -1": {"workers": -1},
    "val_every 0": {"val_every": 0},
}


@pytest.mark.parametrize("change", INVALID.values(), ids=INVALID.keys())
def test_invalid_config_raises_and_writes_nothing(manager, db, dataset_id, change):
    config = {"name": "ok", "dataset_id": dataset_id, **change}
    before = (count(db), count(db, "experiment_events"))
    with pytest.raises(ValueError) as info:
        manager.start_training(config)
    message = str(info.value)
    assert not message[0].islower() and message.endswith(".") and len(message) > 15, message  # a sentence
    assert (count(db), count(db, "experiment_events")) == before


def test_config_that_is_not_a_dict_is_refused(manager, db):
    with pytest.raises(ValueError):
        manager.start_training(["name", "x"])
    assert count(db) == 0


# -- reading -------------------------------------------------------------------------

def test_get_experiment_unknown_id_is_none(manager):
    assert manager.get_experiment(12345) is None


def test_get_experiment_tolerates_broken_json(manager, db, exp_id):
    db.execute("UPDATE experiments SET config = 'not json', metrics = NULL WHERE id = ?", (exp_id,))
    exp = manager.get_experiment(exp_id)
    assert exp["config"] == {} and exp["metrics"] == {}


def test_list_experiments_newest_first_and_by_project(manager, db, dataset_id):
    project = db.execute("INSERT INTO projects (name) VALUES ('p')").lastrowid
    a = manager.start_training({"name": "a", "dataset_id": dataset_id})
    b = manager.start_training({"name": "b", "dataset_id": dataset_id, "project_id": project})
    c = manager.start_training({"name": "c", "dataset_id": dataset_id, "project_id": project})
    # same second: the later id is newer
    assert [e["id"] for e in manager.list_experiments()] == [c, b, a]
    # started_at decides, not the id
    db.execute("UPDATE experiments SET started_at = '2030-01-01T00:00:00' WHERE id = ?", (a,))
    db.execute("UPDATE experiments SET started_at = '2001-01-01T00:00:00' WHERE id = ?", (c,))
    listed = manager.list_experiments()
    assert [e["id"] for e in listed] == [a, b, c]
    assert all(isinstance(e["config"], dict) for e in listed)
    assert [e["id"] for e in manager.list_experiments(project_id=project)] == [b, c]
    assert manager.list_experiments(project_id=project + 1) == []


# -- status ----------------------------------------------------------------------------

@pytest.mark.parametrize("status", STATUSES)
def test_update_experiment_status(manager, exp_id, status):
    manager.update_experiment_status(exp_id, status, error="why" if status == "failed" else None)
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == status
    if status in TERMINAL:
        assert exp["completed_at"]
        assert manager.get_events(exp_id)[-1]["kind"] == status
    else:
        assert exp["completed_at"] is None
        assert [e["kind"] for e in manager.get_events(exp_id)] == ["started"]
    assert exp["error"] == ("why" if status == "failed" else None)


def test_back_to_running_clears_completed_at(manager, exp_id):
    manager.update_experiment_status(exp_id, "interrupted")
    assert manager.get_experiment(exp_id)["completed_at"]
    manager.update_experiment_status(exp_id, "running")
    assert manager.get_experiment(exp_id)["completed_at"] is None


def test_unknown_status_and_unknown_experiment_raise(manager, exp_id):
    with pytest.raises(ValueError, match="Unknown status"):
        manager.update_experiment_status(exp_id, "done")
    assert manager.get_experiment(exp_id)["status"] == "running"
    with pytest.raises(ValueError):
        manager.update_experiment_status(999, "completed")


# -- metrics ---------------------------------------------------------------------------

def test_update_training_metrics_stores_latest_and_history(manager, exp_id):
    assert manager.update_training_metrics(exp_id, {"step": 10, "loss": 2.0, "fidelity": 0.1}) == 2
    assert manager.update_training_metrics(exp_id, {"step": 20, "loss": 1.5}) == 1
    exp = manager.get_experiment(exp_id)
    assert exp["metrics"]["loss"] == 1.5 and exp["metrics"]["fidelity"] == 0.1
    assert exp["metrics"]["step"] == 20 and exp["current_step"] == 20
    assert manager.get_metric_history(exp_id) == {"fidelity": [(10, 0.1)], "loss": [(10, 2.0), (20, 1.5)]}
    assert manager.last_step(exp_id) == 20


def test_batch_of_points_and_resending_does_not_double_count(manager, exp_id):
    batch = [{"step": s, "loss": 1.0 / s, "kl": float(s)} for s in (100, 200, 300)]
    assert manager.update_training_metrics(exp_id, batch) == 6
    history = manager.get_metric_history(exp_id)
    assert manager.update_training_metrics(exp_id, batch) == 0
    assert manager.update_training_metrics(exp_id, batch[1:2]) == 0
    assert manager.get_metric_history(exp_id) == history
    assert len(history["loss"]) == 3
    assert manager.get_experiment(exp_id)["metrics"]["kl"] == 300.0
    assert manager.update_training_metrics(exp_id, []) == 0


def test_an_older_point_joins_the_history_but_not_the_latest(manager, exp_id):
    manager.update_training_metrics(exp_id, [{"step": 30, "loss": 3.0}, {"step": 10, "loss": 1.0}])
    manager.update_training_metrics(exp_id, {"step": 20, "loss": 2.0})
    assert manager.get_metric_history(exp_id)["loss"] == [(10, 1.0), (20, 2.0), (30, 3.0)]
    exp = manager.get_experiment(exp_id)
    assert exp["metrics"]["loss"] == 3.0 and exp["current_step"] == 30


def test_non_finite_and_non_numeric_values_are_skipped(manager, exp_id):
    added = manager.update_training_metrics(exp_id, {
        "step": 5, "ok": 1, "nan": math.nan, "inf": math.inf, "-inf": -math.inf,
        "text": "0.5", "none": None, "flag": True, "list": [1.0]})
    assert added == 1
    assert manager.get_metric_history(exp_id) == {"ok": [(5, 1.0)]}
    metrics = manager.get_experiment(exp_id)["metrics"]
    assert metrics["ok"] == 1.0
    assert not {"nan", "inf", "-inf", "text", "none", "flag", "list"} & set(metrics)


def test_metrics_for_unknown_experiment_raise_and_write_nothing(manager, db):
    with pytest.raises(ValueError):
        manager.update_training_metrics(999, {"step": 1, "loss": 1.0})
    assert count(db, "metric_points") == 0


def test_get_metric_history_key_filter(manager, exp_id):
    manager.update_training_metrics(exp_id, [{"step": s, "a": 1.0, "b": 2.0, "c": 3.0} for s in (3, 1, 2)])
    assert manager.get_metric_history(exp_id, keys=["b"]) == {"b": [(1, 2.0), (2, 2.0), (3, 2.0)]}
    assert set(manager.get_metric_history(exp_id, keys=("a", "c"))) == {"a", "c"}
    assert manager.get_metric_history(exp_id, keys=[]) == {}
    assert manager.get_metric_history(exp_id, keys=["missing"]) == {}
    assert manager.get_metric_history(999) == {}


# -- processes -------------------------------------------------------------------------

def test_register_and_stop_training(manager, exp_id):
    process = FakeProcess()
    manager.register_process(exp_id, process)
    assert manager.is_active(exp_id) and manager.get_process(exp_id) is process
    assert manager.active_experiments() == [exp_id]
    assert manager.stop_training(exp_id) is True
    assert process.stop_calls == 1
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "stopped" and exp["completed_at"]
    assert not manager.is_active(exp_id) and manager.get_process(exp_id) is None
    assert manager.active_experiments() == []
    assert manager.stop_training(exp_id) is False  # a second stop finds nothing to stop
    assert process.stop_calls == 1


def test_stop_training_without_a_process(manager, exp_id, dataset_id):
    assert manager.stop_training(exp_id) is False
    assert manager.get_experiment(exp_id)["status"] == "stopped"  # a running record is still stopped
    done = manager.start_training({"name": "done", "dataset_id": dataset_id})
    manager.update_experiment_status(done, "completed")
    assert manager.stop_training(done) is False
    assert manager.get_experiment(done)["status"] == "completed"  # a finished run keeps its status
    with pytest.raises(ValueError):
        manager.stop_training(999)


def test_unregister_only_the_process_given(manager, exp_id):
    first, second = FakeProcess(), FakeProcess()
    manager.register_process(exp_id, first)
    manager.register_process(exp_id, second)  # e.g. a resumed run replaced it
    manager.unregister_process(exp_id, first)
    assert manager.get_process(exp_id) is second
    manager.unregister_process(exp_id)
    assert manager.get_process(exp_id) is None


def test_stop_all(manager, dataset_id):
    ids = [manager.start_training({"name": f"r{i}", "dataset_id": dataset_id}) for i in range(3)]
    processes = {i: FakeProcess() for i in ids[:2]}
    for i, process in processes.items():
        manager.register_process(i, process)
    assert sorted(manager.stop_all()) == sorted(ids[:2])
    assert all(p.stop_calls == 1 for p in processes.values())
    assert manager.active_experiments() == []
    assert [manager.get_experiment(i)["status"] for i in ids] == ["stopped", "stopped", "running"]
    assert manager.stop_all() == []


def test_delete_experiment_refused_while_active(manager, db, exp_id):
    manager.update_training_metrics(exp_id, {"step": 1, "loss": 1.0})
    manager.register_process(exp_id, FakeProcess())
    with pytest.raises(ValueError, match="Stop the run"):
        manager.delete_experiment(exp_id)
    assert manager.get_experiment(exp_id) is not None
    manager.stop_training(exp_id)
    manager.delete_experiment(exp_id)
    assert manager.get_experiment(exp_id) is None
    assert count(db, "metric_points") == 0 and count(db, "experiment_events") == 0  # cascaded


def test_new_experiment_never_reuses_a_deleted_runs_folder(manager, dataset_id):
    old = manager.start_training({"name": "old", "dataset_id": dataset_id})
    old_dir = manager.get_experiment(old)["out_dir"]
    (Path(old_dir) / "old_abc123" / "version_0").mkdir(parents=True)  # what RAVE left there
    manager.update_experiment_status(old, "completed")
    manager.delete_experiment(old)
    new = manager.start_training({"name": "new", "dataset_id": dataset_id})
    assert manager.get_experiment(new)["out_dir"] != old_dir


# -- without Qt ----------------------------------------------------------------------------

def test_works_in_a_plain_python_process_without_qapplication(tmp_path):
    script = textwrap.dedent("""
        import json, sys
        from pathlib import Path
        from rave_gui.core.database import Database
        from rave_gui.backend.training import TrainingManager

        root = Path(sys.argv[1])
        folder = root / "ds"
        folder.mkdir()
        (folder / "metadata.yaml").write_text("channels: 1\\nn_seconds: 2.0\\nsr: 44100\\n")
        (folder / "data.mdb").write_bytes(b"")
        db = Database(root / "db.sqlite3")
        ds = db.execute("INSERT INTO datasets (name, path) VALUES ('d', ?)", (str(folder),)).lastrowid
        manager = TrainingManager(db)

        class Fake:
            def stop(self):
                pass

        exp = manager.start_training({"name": "plain", "dataset_id": ds})
        added = manager.update_training_metrics(exp, {"step": 1, "loss": 0.5})
        manager.register_process(exp, Fake())
        stopped = manager.stop_training(exp)
        from PyQt6.QtCore import QCoreApplication
        print(json.dumps({
            "status": manager.get_experiment(exp)["status"], "added": added, "stopped": stopped,
            "widgets": "PyQt6.QtWidgets" in sys.modules, "gui": "PyQt6.QtGui" in sys.modules,
            "app": QCoreApplication.instance() is not None,
        }))
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "status": "stopped", "added": 1, "stopped": True, "widgets": False, "gui": False, "app": False}


def test_a_point_with_a_bad_step_is_skipped_not_fatal(manager, exp_id):
    batch = [{"step": 1, "loss": 1.0}, {"step": "abc", "loss": 2.0}, {"step": math.nan, "loss": 3.0},
             {"step": 2, "loss": 4.0}]
    assert manager.update_training_metrics(exp_id, batch) == 2
    assert manager.get_metric_history(exp_id) == {"loss": [(1, 1.0), (2, 4.0)]}


def test_a_config_that_rave_cannot_load_is_refused_before_launch(db, fake_dataset):
    from rave_gui.backend.datasets import DatasetManager
    from rave_gui.backend.training import TrainingManager
    manager = TrainingManager(db)
    ds = DatasetManager(db).register(fake_dataset)
    with pytest.raises(ValueError, match="v2_small instead"):
        manager.start_training(dict(name="x", dataset_id=ds, base_config="v2_nopqmf_small"))
    assert manager.list_experiments() == []
