"""The real `rave train` on the CPU, through TrainingManager + TrainingProcess."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rave_gui.backend.checkpoints import list_checkpoints
from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.export import ExportProcess
from rave_gui.backend.training import TrainingManager, TrainingProcess
from rave_gui.backend.training_process import find_run_dir

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
    def __init__(self, process):
        self.steps, self.metrics, self.lines, self.result = [], [], [], None
        process.step_update.connect(lambda s, t: self.steps.append((s, t)))
        process.metrics_update.connect(self.metrics.append)
        process.output.connect(self.lines.append)
        process.finished.connect(lambda ok, msg: setattr(self, "result", (ok, msg)))


def launch(manager, exp_id, resume=False):
    process = TrainingProcess(manager, exp_id, resume=resume)
    rec = Recorder(process)
    manager.register_process(exp_id, process)
    process.start()
    return process, rec


@pytest.fixture(scope="module")
def completed_run(env, qapp):
    """A 60-step v2_small run, batch 2, on the CPU, to completion."""
    from pytestqt.qtbot import QtBot
    manager, dataset_id = env
    exp_id = manager.start_training(dict(BASE, name="complete run", dataset_id=dataset_id, max_steps=60))
    process, rec = launch(manager, exp_id)
    deadline = time.monotonic() + 900
    while process.isRunning() and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.05)
    process.wait(10_000)
    qapp.processEvents()
    del QtBot
    return manager, exp_id, rec


def test_run_completes_with_real_losses(completed_run):
    manager, exp_id, rec = completed_run
    exp = manager.get_experiment(exp_id)
    assert rec.result == (True, "Completed 60 steps."), "\n".join(rec.lines[-30:])
    assert exp["status"] == "completed" and exp["completed_at"]
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
    manager, dataset_id = env
    exp_id = manager.start_training(dict(BASE, name="stop & resume ö", dataset_id=dataset_id,
                                         max_steps=2000, log_every=5))
    process, rec = launch(manager, exp_id)
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1][0] >= 25, timeout=600_000)
    leader = psutil.Process(process.pid)
    family = [leader] + leader.children(recursive=True)
    t0 = time.monotonic()
    assert manager.stop_training(exp_id) is True
    qtbot.waitUntil(lambda: rec.result is not None, timeout=30_000)
    assert time.monotonic() - t0 < 30
    process.wait(5000)
    gone, alive = psutil.wait_procs(family, timeout=1)
    assert not alive, f"left behind: {alive}"
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "stopped" and manager.get_process(exp_id) is None
    stop_step = rec.steps[-1][0]
    assert stop_step >= 25
    ckpts = list_checkpoints(find_run_dir(exp["out_dir"]))
    stop_ckpt = [c for c in ckpts if c["file"].startswith("stopped-step=")]
    assert stop_ckpt and stop_ckpt[0]["resume"] and abs(stop_ckpt[0]["step"] - stop_step) <= 2
    before = manager.get_metric_history(exp_id)

    # resume to stop + 15 steps: the counter continues from the stop, not from 0 or step 19
    manager.resume_training(exp_id, max_steps=stop_step + 15)
    process2, rec2 = launch(manager, exp_id, resume=True)
    qtbot.waitUntil(lambda: rec2.result is not None, timeout=600_000)
    process2.wait(5000)
    assert rec2.result[0] is True, "\n".join(rec2.lines[-30:])
    assert rec2.steps[0][0] >= stop_step and rec2.steps[0][0] <= stop_step + 5
    assert rec2.steps[-1] == (stop_step + 15, stop_step + 15)
    assert any(f"stopped-step={stop_ckpt[0]['step']}.ckpt" in line for line in rec2.lines)
    after = manager.get_metric_history(exp_id)
    new_loss_steps = [s for s, _ in after["loss"] if s > stop_step]
    assert new_loss_steps and min(new_loss_steps) <= stop_step + 5
    assert len(after["loss"]) == len(set(s for s, _ in after["loss"]))  # no double counting
    assert all(p in after["loss"] for p in before["loss"])
    run_dir = find_run_dir(exp["out_dir"])
    assert (run_dir / "version_1").is_dir()
    kinds = [e["kind"] for e in manager.get_events(exp_id)]
    assert kinds == ["started", "stopped", "resumed", "completed"]


def test_missing_dataset_fails_with_a_reason(env, qtbot, tmp_path, rave_dataset):
    manager, _ = env
    import shutil
    copy = tmp_path / "gone"
    shutil.copytree(rave_dataset, copy)
    ds_id = DatasetManager(manager.db).register(copy)
    exp_id = manager.start_training(dict(BASE, name="no data", dataset_id=ds_id, max_steps=10))
    shutil.rmtree(copy)
    process, rec = launch(manager, exp_id)
    qtbot.waitUntil(lambda: rec.result is not None, timeout=60_000)
    process.wait(5000)
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "failed"
    assert "does not exist" in exp["error"] and str(copy) in exp["error"]
    assert rec.result[0] is False and manager.get_process(exp_id) is None


def test_export_finished_run_loads_with_torch(completed_run, qtbot, tmp_path):
    manager, exp_id, _ = completed_run
    export = ExportProcess(manager, exp_id, output_dir=tmp_path / "models", streaming=True)
    results = []
    export.finished.connect(lambda ok, msg: results.append((ok, msg)))
    export.start()
    qtbot.waitUntil(lambda: bool(results), timeout=300_000)
    export.wait(5000)
    assert results[0][0] is True, results
    ts = tmp_path / "models" / "complete run_streaming.ts"
    assert ts.is_file() and ts.stat().st_size > 1_000_000
    row = manager.db.query_one("SELECT * FROM exports WHERE experiment_id = ?", (exp_id,))
    assert row["path"] == str(ts) and row["streaming"] == 1
    check = ("import sys, torch; m = torch.jit.load(sys.argv[1]); x = torch.zeros(1, 1, 8192);"
             " y = m.forward(x); print(tuple(y.shape))")
    out = subprocess.run([sys.executable, "-c", check, str(ts)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("(1, 1,")
