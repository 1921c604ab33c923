"""The real `rave train` on the CPU, through the RunController (which owns the
processes, applies the statuses and keeps the queue)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rave_gui.backend.checkpoints import list_checkpoints
from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.runs import RunController
from rave_gui.backend.training import TrainingManager

pytestmark = pytest.mark.e2e

BASE = dict(base_config="v2_small", batch_size=2, device="cpu", val_every=20)


@pytest.fixture(scope="module")
def env(tmp_path_factory, rave_dataset):
    from rave_gui.core.database import Database
    root = tmp_path_factory.mktemp("e2e_db")
    db = Database(root / "db.sqlite3")
    manager = TrainingManager(db)
    dataset_id = DatasetManager(db).register(rave_dataset)
    yield manager, dataset_id
    db.close()


class Recorder:
    """One run's signals from the controller, and how it ended."""

    def __init__(self, controller, exp_id):
        self.steps, self.metrics, self.lines, self.result = [], [], [], None
        self.statuses = []
        manager = controller.manager

        def changed(e, what):
            if e != exp_id or what != "status":
                return
            exp = manager.get_experiment(e)
            self.statuses.append(exp["status"])
            if not controller.is_live(e) and exp["status"] in ("stopped", "completed", "failed", "interrupted"):
                self.result = (exp["status"], exp["error"])
        controller.step_changed.connect(lambda e, s, t: e == exp_id and self.steps.append((s, t)))
        controller.metrics_added.connect(lambda e, m: e == exp_id and self.metrics.append(m))
        controller.log_line.connect(lambda e, line: e == exp_id and self.lines.append(line))
        controller.run_changed.connect(changed)


def launch(manager, config=None, exp_id=None, resume_to=None):
    """Start a run (or resume ``exp_id``) through a controller; returns (controller, id, recorder)."""
    controller = RunController(manager)
    if config is not None:
        exp_id = manager.start_training(config)
        rec = Recorder(controller, exp_id)
        controller._launch(exp_id)
    else:
        rec = Recorder(controller, exp_id)
        controller.resume(exp_id, max_steps=resume_to)
    return controller, exp_id, rec


def wait_end(qtbot, controller, exp_id, rec, timeout=600_000):
    qtbot.waitUntil(lambda: rec.result is not None, timeout=timeout)
    qtbot.waitUntil(lambda: not controller._ending or not any(p.isRunning() for p in controller._ending),
                    timeout=10_000)


@pytest.fixture(scope="module")
def completed_run(env, qapp):
    """A 60-step v2_small run, batch 2, on the CPU, to completion."""
    from pytestqt.qtbot import QtBot
    manager, dataset_id = env
    controller, exp_id, rec = launch(manager, dict(BASE, name="complete run", dataset_id=dataset_id,
                                                   max_steps=60))
    process = controller.live_run(exp_id).process
    deadline = time.monotonic() + 900
    while rec.result is None and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.05)
    process.wait(10_000)
    qapp.processEvents()
    del QtBot
    return manager, exp_id, rec


def test_run_completes_with_real_losses(completed_run):
    manager, exp_id, rec = completed_run
    exp = manager.get_experiment(exp_id)
    assert rec.result == ("completed", None), "\n".join(rec.lines[-30:])
    assert rec.statuses[:2] == ["starting", "running"]
    assert exp["status"] == "completed" and exp["completed_at"]
    assert exp["run_dir"] and Path(exp["run_dir"]).parent == Path(exp["out_dir"])  # stored, not guessed
    history = manager.get_metric_history(exp_id)
    # RAVE logs its losses every 50 steps: step 49 holds the generator's terms
    loss_steps = dict(history["loss"])
    assert 49 in loss_steps and loss_steps[49] > 0
    terms = sum(dict(history[k])[49] for k in ("multiband_spectral_distance", "fullband_spectral_distance",
                                              "regularization") if k in history)
    assert loss_steps[49] == pytest.approx(terms)
    assert [s for s, _ in history["val_loss"]] == [19, 39, 59]
    assert all(v > 0 for _, v in history["val_loss"])
    assert "lr" in history and 1e-5 < history["lr"][0][1] <= 1e-3  # RAVE's real schedule
    assert rec.steps[-1] == (60, 60)
    assert [s for s, _ in rec.steps] == sorted(s for s, _ in rec.steps)
    assert any(m.get("val_loss") for m in rec.metrics)
    log = Path(exp["log_path"]).read_text(errors="replace")
    assert "`Trainer.fit` stopped: `max_steps=60` reached" in log
    assert manager.get_process(exp_id) is None


def test_stop_midway_then_resume_continues_from_stop_step(env, qtbot):
    """The name holds 'step=99999': the launcher prints it in its checkpoint line,
    and it must not become the run's step (only whole launcher lines with this
    launch's token count)."""
    manager, dataset_id = env
    controller, exp_id, rec = launch(manager, dict(BASE, name="stop & resume ö step=99999 x",
                                                   dataset_id=dataset_id, max_steps=2000, log_every=5))
    process = controller.live_run(exp_id).process
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1][0] >= 25, timeout=600_000)
    leader = psutil.Process(process.pid)
    family = [leader] + leader.children(recursive=True)
    t0 = time.monotonic()
    controller.stop(exp_id)
    assert manager.get_experiment(exp_id)["status"] == "stopping"  # saving its checkpoint
    wait_end(qtbot, controller, exp_id, rec, timeout=30_000)
    assert time.monotonic() - t0 < 30
    process.wait(5000)
    gone, alive = psutil.wait_procs(family, timeout=1)
    assert not alive, f"left behind: {alive}"
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "stopped" and manager.get_process(exp_id) is None
    stop_step = rec.steps[-1][0]
    assert 25 <= stop_step < 2000 and exp["current_step"] == stop_step
    assert any("step=99999" in line for line in rec.lines)  # it was printed, and ignored
    ckpts = list_checkpoints(exp["run_dir"])
    stop_ckpt = [c for c in ckpts if c["file"].startswith("stopped-step=")]
    assert stop_ckpt and stop_ckpt[0]["resume"] and abs(stop_ckpt[0]["step"] - stop_step) <= 2
    before = manager.get_metric_history(exp_id)

    # resume to stop + 15 steps: the counter continues from the stop, not from 0 or step 19
    controller2, _, rec2 = launch(manager, exp_id=exp_id, resume_to=stop_step + 15)
    wait_end(qtbot, controller2, exp_id, rec2)
    assert rec2.result == ("completed", None), "\n".join(rec2.lines[-30:])
    assert rec2.steps[0][0] >= stop_step and rec2.steps[0][0] <= stop_step + 5
    assert rec2.steps[-1] == (stop_step + 15, stop_step + 15)
    assert any(f"stopped-step={stop_ckpt[0]['step']}.ckpt" in line for line in rec2.lines)
    after = manager.get_metric_history(exp_id)
    new_loss_steps = [s for s, _ in after["loss"] if s > stop_step]
    assert new_loss_steps and min(new_loss_steps) <= stop_step + 5
    assert len(after["loss"]) == len(set(s for s, _ in after["loss"]))  # no double counting
    assert all(p in after["loss"] for p in before["loss"])
    run_dir = Path(exp["run_dir"])
    assert (run_dir / "version_1").is_dir()
    kinds = [e["kind"] for e in manager.get_events(exp_id)]
    assert kinds == ["started", "running", "stopping", "stopped", "resumed", "running", "completed"]


def test_missing_dataset_fails_with_a_reason(env, qtbot, tmp_path, rave_dataset):
    manager, _ = env
    import shutil
    copy = tmp_path / "gone"
    shutil.copytree(rave_dataset, copy)
    ds_id = DatasetManager(manager.db).register(copy)
    config = dict(BASE, name="no data", dataset_id=ds_id, max_steps=10)
    manager.validate_config(config)
    shutil.rmtree(copy)
    controller, exp_id, rec = launch(manager, config)
    wait_end(qtbot, controller, exp_id, rec, timeout=60_000)
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "failed"
    assert "does not exist" in exp["error"] and str(copy) in exp["error"]
    assert rec.result[0] == "failed" and manager.get_process(exp_id) is None


def test_export_finished_run_loads_with_torch(completed_run, qtbot, tmp_path):
    manager, exp_id, _ = completed_run
    controller = RunController(manager)
    results = []
    controller.export_done.connect(lambda e, ok, msg: results.append((e, ok, msg)))
    export = controller.export(exp_id, {"output_dir": tmp_path / "models", "streaming": True})
    assert controller.exporting(exp_id)
    qtbot.waitUntil(lambda: bool(results), timeout=300_000)
    export.wait(5000)
    assert results[0][:2] == (exp_id, True), results
    assert not controller.exporting(exp_id)
    ts = tmp_path / "models" / "complete run_streaming.ts"
    assert ts.is_file() and ts.stat().st_size > 1_000_000
    row = manager.db.query_one("SELECT * FROM exports WHERE experiment_id = ?", (exp_id,))
    assert row["path"] == str(ts) and row["streaming"] == 1
    check = ("import sys, torch; m = torch.jit.load(sys.argv[1]); x = torch.zeros(1, 1, 8192);"
             " y = m.forward(x); print(tuple(y.shape))")
    out = subprocess.run([sys.executable, "-c", check, str(ts)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("(1, 1,")


# -- the queue, with real runs ------------------------------------------------------------

def test_queue_runs_one_after_the_other_and_survives_a_new_controller(env, qtbot):
    """cpu_slots=1: two queued runs run one after the other; a third, removed while
    queued, never starts and has no history; the queue lives in the database."""
    manager, dataset_id = env
    tiny = dict(BASE, dataset_id=dataset_id, max_steps=6, val_every=3, log_every=1)
    controller = RunController(manager, cpu_slots=1)
    controller.autostart = False  # build the queue first, then hand it to a new controller
    first = controller.enqueue(dict(tiny, name="queue 1"))
    second = controller.enqueue(dict(tiny, name="queue 2"))
    third = controller.enqueue(dict(tiny, name="queue 3"))
    controller.move(second, -1)
    assert controller.queued() == [second, first, third]
    controller.stop(third)  # removed while queued
    qtbot.wait(200)
    assert controller.live_ids() == [] and manager.get_experiment(third)["status"] == "stopped"

    after_restart = RunController(manager, cpu_slots=1)
    assert after_restart.queued() == [second, first]
    ended = []
    after_restart.run_changed.connect(lambda e, what: what == "status" and not after_restart.is_live(e)
                                      and manager.get_experiment(e)["status"] == "completed"
                                      and ended.append(e))
    after_restart.reattach_all()
    qtbot.waitUntil(lambda: after_restart.live_ids() == [second], timeout=10_000)
    assert manager.get_experiment(first)["status"] == "queued"  # one CPU slot: it waits
    qtbot.waitUntil(lambda: ended == [second, first], timeout=600_000)
    a, b = manager.get_experiment(second), manager.get_experiment(first)
    assert a["status"] == b["status"] == "completed"
    assert b["started_at"] >= a["completed_at"]
    c = manager.get_experiment(third)
    assert c["status"] == "stopped" and c["started_at"] is None and c["pid"] is None
    assert manager.get_metric_history(third) == {}
    assert not Path(c["out_dir"]).exists()  # it never started
    for exp_id in (first, second):
        kinds = [e["kind"] for e in manager.get_events(exp_id)]
        assert kinds.count("starting") == 1 and kinds[-1] == "completed"
    after_restart.stop_all(30)
