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
from rave_gui.backend.run_state import TRANSITIONS, TransitionError
from rave_gui.backend.training import DEFAULTS, STATUSES, TERMINAL, TrainingManager


@pytest.fixture
def manager(db, tmp_path) -> TrainingManager:
    # one GPU, as nvidia-smi would list it: 'gpu:0' is valid, 'gpu:1' is not
    return TrainingManager(db, runs_root=tmp_path / "runs", gpus=["NVIDIA Test GPU"])


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

def test_start_training_creates_a_starting_record(manager, db, dataset_id, tmp_path):
    exp_id = manager.start_training({"name": "  drums v2  ", "dataset_id": dataset_id,
                                     "max_steps": 2000.0, "modifiers": ["causal", "causal", "snake"],
                                     "overrides": [" PHASE_1_DURATION=1000 "], "device": "gpu:0"})
    exp = manager.get_experiment(exp_id)
    assert exp["name"] == "drums v2"
    assert exp["status"] == "starting" and exp["completed_at"] is None and exp["started_at"]
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

def walk_to(manager, exp_id, status):
    """Bring a fresh ('starting') run to ``status`` through allowed transitions."""
    path = {"starting": [], "running": ["running"], "stopping": ["running", "stopping"],
            "stopped": ["running", "stopping", "stopped"], "completed": ["running", "completed"],
            "failed": ["running", "failed"], "interrupted": ["running", "interrupted"]}[status]
    for step in path:
        manager.set_status(exp_id, step, error="why" if step == "failed" else None)


@pytest.mark.parametrize("old", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_every_transition_is_allowed_or_refused_as_the_table_says(manager, dataset_id, old, new):
    if old == "queued":
        exp_id = manager.enqueue_training({"name": "q", "dataset_id": dataset_id})
    else:
        exp_id = manager.start_training({"name": "r", "dataset_id": dataset_id})
        walk_to(manager, exp_id, old)
    events = len(manager.get_events(exp_id))
    if new in TRANSITIONS[old]:
        assert manager.set_status(exp_id, new, error="why" if new == "failed" else None) == old
        exp = manager.get_experiment(exp_id)
        assert exp["status"] == new
        assert (exp["completed_at"] is not None) == (new in TERMINAL)
        assert exp["queue_pos"] is None
        event = manager.get_events(exp_id)[-1]
        assert event["kind"] == new and len(manager.get_events(exp_id)) == events + 1
    else:
        with pytest.raises(TransitionError, match=f"A {old} run cannot become {new}"):
            manager.set_status(exp_id, new)
        assert manager.get_experiment(exp_id)["status"] == old
        assert len(manager.get_events(exp_id)) == events  # nothing written


def test_each_transition_is_an_event_with_the_step(manager, exp_id):
    manager.set_status(exp_id, "running")
    manager.update_training_metrics(exp_id, {"step": 40, "loss": 1.0})
    manager.set_status(exp_id, "stopping")
    manager.set_status(exp_id, "stopped")
    assert [(e["kind"], e["step"]) for e in manager.get_events(exp_id)] == [
        ("started", 0), ("running", 0), ("stopping", 40), ("stopped", 40)]


def test_back_to_starting_clears_completed_at(manager, exp_id):
    walk_to(manager, exp_id, "interrupted")
    assert manager.get_experiment(exp_id)["completed_at"]
    manager.set_status(exp_id, "starting")
    assert manager.get_experiment(exp_id)["completed_at"] is None


def test_unknown_status_and_unknown_experiment_raise(manager, exp_id):
    with pytest.raises(ValueError, match="Unknown status"):
        manager.update_experiment_status(exp_id, "done")
    assert manager.get_experiment(exp_id)["status"] == "starting"
    with pytest.raises(ValueError):
        manager.update_experiment_status(999, "completed")


# -- the queue ---------------------------------------------------------------------------

def test_queue_order_move_and_remove(manager, dataset_id):
    a, b, c = (manager.enqueue_training({"name": n, "dataset_id": dataset_id}) for n in "abc")
    assert manager.queued() == [a, b, c]
    assert manager.get_experiment(a)["started_at"] is None
    manager.move_queued(c, -1)
    assert manager.queued() == [a, c, b]
    manager.move_queued(c, -5)       # clamped at the front
    assert manager.queued() == [c, a, b]
    manager.move_queued(a, 10)
    assert manager.queued() == [c, b, a]
    assert manager.stop_training(b) is False  # a queued run has no process: taken off the queue
    assert manager.queued() == [c, a]
    exp = manager.get_experiment(b)
    assert exp["status"] == "stopped" and exp["queue_pos"] is None
    assert [e["kind"] for e in manager.get_events(b)] == ["queued", "removed from queue"]
    with pytest.raises(ValueError, match="Only a queued run"):
        manager.move_queued(b, 1)
    assert [e["id"] for e in manager.list_experiments()][:2] == [c, a]  # the queue first, in order


def test_a_queued_run_is_claimed_once(manager, dataset_id, db):
    exp_id = manager.enqueue_training({"name": "once", "dataset_id": dataset_id})
    other = TrainingManager(db)  # a second controller on the same database
    manager.set_status(exp_id, "starting")
    with pytest.raises(TransitionError):
        other.set_status(exp_id, "starting")
    assert manager.queued() == []


def test_invalid_config_is_not_queued(manager, db, dataset_id):
    with pytest.raises(ValueError):
        manager.enqueue_training({"name": "", "dataset_id": dataset_id})
    assert count(db) == 0


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
    manager.set_status(exp_id, "running")
    assert manager.stop_training(exp_id) is True
    assert process.stop_calls == 1
    exp = manager.get_experiment(exp_id)
    # the launcher is writing its stop checkpoint: the controller records 'stopped' when it ends
    assert exp["status"] == "stopping" and exp["completed_at"] is None
    assert manager.is_active(exp_id)  # registered until its process has ended
    manager.unregister_process(exp_id, process)
    assert manager.active_experiments() == []
    assert manager.stop_training(exp_id) is False  # a second stop finds nothing to stop
    assert process.stop_calls == 1


def test_stop_training_without_a_process(manager, exp_id, dataset_id):
    assert manager.stop_training(exp_id) is False
    assert manager.get_experiment(exp_id)["status"] == "stopped"  # a record with no process is stopped
    done = manager.start_training({"name": "done", "dataset_id": dataset_id})
    walk_to(manager, done, "completed")
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
    assert [manager.get_experiment(i)["status"] for i in ids] == ["stopping", "stopping", "starting"]


def test_delete_experiment_refused_while_active(manager, db, exp_id):
    manager.update_training_metrics(exp_id, {"step": 1, "loss": 1.0})
    manager.register_process(exp_id, FakeProcess())
    with pytest.raises(ValueError, match="Stop the run"):
        manager.delete_experiment(exp_id)
    assert manager.get_experiment(exp_id) is not None
    manager.stop_training(exp_id)
    with pytest.raises(ValueError, match="Stop the run"):
        manager.delete_experiment(exp_id)  # still stopping
    manager.unregister_process(exp_id)
    manager.set_status(exp_id, "stopped")
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
        "status": "stopping", "added": 1, "stopped": True, "widgets": False, "gui": False, "app": False}


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


# -- reliability: validation, resume, history branches ------------------------------------

@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "12", True, 2.5])
def test_max_steps_that_is_not_a_whole_number_gets_a_sentence(manager, db, dataset_id, value):
    with pytest.raises(ValueError, match="Max steps must be a whole number"):
        manager.start_training({"name": "x", "dataset_id": dataset_id, "max_steps": value})
    assert count(db) == 0


@pytest.mark.parametrize("value", [1e300, 10**40, -(10**30), 0])
def test_absurd_max_steps_get_a_short_sentence(manager, db, dataset_id, value):
    with pytest.raises(ValueError, match=r"Max steps must be between 1 and 100,000,000 \(got [^)]{1,20}\)\.$"):
        manager.start_training({"name": "x", "dataset_id": dataset_id, "max_steps": value})
    assert count(db) == 0


@pytest.mark.parametrize("device", ["cpu\n", "gpu:0\n", " cpu", "auto ", "gpu:0x"])
def test_device_with_trailing_text_is_refused(manager, dataset_id, device):
    with pytest.raises(ValueError, match="Device must be"):
        manager.start_training({"name": "x", "dataset_id": dataset_id, "device": device})


def test_a_gpu_that_is_not_there_is_refused(db, dataset_id, tmp_path):
    one = TrainingManager(db, runs_root=tmp_path, gpus=["A100"])
    assert one.validate_config({"name": "x", "dataset_id": dataset_id, "device": "gpu:0"})["device"] == "gpu:0"
    with pytest.raises(ValueError, match="There is no GPU 1: this computer has 1 NVIDIA GPU"):
        one.validate_config({"name": "x", "dataset_id": dataset_id, "device": "gpu:1"})
    none = TrainingManager(db, runs_root=tmp_path, gpus=[])
    with pytest.raises(ValueError, match="no NVIDIA GPU was found"):
        none.validate_config({"name": "x", "dataset_id": dataset_id, "device": "gpu:0"})


@pytest.mark.parametrize("binding", ["PHASE_1_DURATION=1\x00", "A=1\nB=2", "A=\x1b[31m1", "A=1\x7f"])
def test_a_binding_with_a_control_character_is_refused(manager, db, dataset_id, binding):
    with pytest.raises(ValueError, match="control character|line break"):
        manager.start_training({"name": "x", "dataset_id": dataset_id, "overrides": [binding]})
    assert count(db) == 0


def fake_run_folder(manager, exp_id, steps_with_checkpoints=()) -> Path:
    """RAVE's run folder with checkpoints noted in the launcher's index (no torch)."""
    exp = manager.get_experiment(exp_id)
    run_dir = Path(exp["out_dir"]) / "run_abc123"
    ckpts = run_dir / "version_0" / "checkpoints"
    ckpts.mkdir(parents=True)
    for n, step in enumerate(steps_with_checkpoints):
        path = ckpts / f"stopped-step={step}.ckpt"
        path.write_bytes(b"x")
        import os
        os.utime(path, (1_000_000 + n, 1_000_000 + n))
        with open(ckpts / "rave-gui-index.jsonl", "a") as fh:
            fh.write(json.dumps({"file": path.name, "step": step}) + "\n")
    manager.set_run_dir(exp_id, run_dir)
    return run_dir


def test_resume_without_a_checkpoint_changes_nothing(manager, exp_id):
    walk_to(manager, exp_id, "interrupted")
    fake_run_folder(manager, exp_id)
    events = manager.get_events(exp_id)
    with pytest.raises(ValueError, match="no checkpoint to resume from"):
        manager.resume_training(exp_id)
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "interrupted" and manager.get_events(exp_id) == events


def test_resume_drops_the_abandoned_branch_of_the_history(manager, exp_id):
    """Killed at step 33, resumed from the step-19 checkpoint: steps 20..33 of the old
    branch are gone (the resumed run logs them again, with other values)."""
    manager.set_status(exp_id, "running")
    manager.update_training_metrics(exp_id, [{"step": s, "loss": float(s)} for s in range(1, 34)])
    walk_to_end = manager.set_status(exp_id, "interrupted")
    assert walk_to_end == "running"
    fake_run_folder(manager, exp_id, [10, 19])
    exp = manager.resume_training(exp_id)
    assert exp["status"] == "starting" and exp["current_step"] == 19
    assert [s for s, _ in manager.get_metric_history(exp_id)["loss"]] == list(range(1, 20))
    assert manager.get_events(exp_id)[-1]["kind"] == "resumed"
    # the new branch's points replace, they are not ignored
    assert manager.update_training_metrics(exp_id, {"step": 19, "loss": -1.0}) == 1
    assert manager.get_metric_history(exp_id)["loss"][-1] == (19, -1.0)


def test_resume_refused_while_live_or_queued(manager, exp_id, dataset_id):
    with pytest.raises(ValueError, match="still running"):
        manager.resume_training(exp_id)
    queued = manager.enqueue_training({"name": "q", "dataset_id": dataset_id})
    with pytest.raises(ValueError, match="queued run cannot be resumed"):
        manager.resume_training(queued)
