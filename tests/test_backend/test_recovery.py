"""Start-up recovery: runs left 'running' by a dead app are re-attached or marked interrupted."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.training import TrainingManager, TrainingProcess


def _experiment(db, fake_dataset, name="r"):
    manager = TrainingManager(db)
    ds = DatasetManager(db).register(fake_dataset)
    return manager, manager.start_training(dict(name=name, dataset_id=ds, max_steps=10, device="cpu"))


def _orphan_run(manager, exp_id, script: str, qtbot, earlier: str = "") -> tuple:
    """A child that writes to the run's log as an orphaned `rave train` would
    (own session, not started by this TrainingProcess); re-attach to it and follow it
    to the end. Returns (recover_runs() result, finished args, steps, lines)."""
    log = Path(manager.get_experiment(exp_id)["log_path"])
    log.parent.mkdir(parents=True)
    log.write_text(earlier)
    with open(log, "ab") as sink:
        child = subprocess.Popen([sys.executable, "-c", script], stdout=sink, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        manager.set_process_info(exp_id, child.pid, psutil.Process(child.pid).create_time())
        recovered = manager.recover_runs()
        process = TrainingProcess(manager, exp_id, attach_pid=child.pid)
        steps, lines = [], []
        process.step_update.connect(lambda s, t: steps.append((s, t)))
        process.output.connect(lines.append)
        with qtbot.waitSignal(process.finished, timeout=20_000) as blocker:
            process.start()
            qtbot.waitUntil(lambda: child.poll() is not None, timeout=15_000)
        process.wait(5000)
    finally:
        child.kill()
        child.wait()
    return recovered, (child.pid, *blocker.args), steps, lines


def test_dead_process_is_marked_interrupted(db, fake_dataset):
    manager, exp_id = _experiment(db, fake_dataset)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    manager.set_process_info(exp_id, child.pid, 1.0)
    alive, interrupted = manager.recover_runs()
    assert alive == [] and interrupted == [exp_id]
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "interrupted" and "Resume it" in exp["error"] and exp["pid"] is None
    manager.resume_training(exp_id)  # interrupted runs are resumable
    assert manager.get_experiment(exp_id)["status"] == "running"


def test_reused_pid_with_another_start_time_is_not_trusted(db, fake_dataset):
    manager, exp_id = _experiment(db, fake_dataset)
    me = psutil.Process(os.getpid())
    manager.set_process_info(exp_id, me.pid, me.create_time() - 3600)  # same pid, other process
    alive, interrupted = manager.recover_runs()
    assert alive == [] and interrupted == [exp_id]


def test_live_process_is_reattached_and_followed_to_the_end(db, fake_dataset, qtbot):
    manager, exp_id = _experiment(db, fake_dataset)
    script = textwrap.dedent("""
        import time
        time.sleep(1.5)
        print('[rave-gui] step=5/10', flush=True)
        time.sleep(0.5)
        print('[rave-gui] step=10/10', flush=True)
        print('`Trainer.fit` stopped: `max_steps=10` reached.', flush=True)
    """)
    recovered, (pid, ok, _msg), steps, lines = _orphan_run(manager, exp_id, script, qtbot,
                                                           earlier="earlier output\n")
    assert recovered == ([(exp_id, pid)], [])
    assert ok is True
    assert steps[-1] == (10, 10) and (5, 10) in steps
    assert "earlier output" not in lines  # the log is followed from where it was
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "completed"
    assert [e["kind"] for e in manager.get_events(exp_id)] == ["started", "reattached", "completed"]


def test_a_run_that_finished_while_the_app_was_closed_is_completed(db, fake_dataset):
    manager, exp_id = _experiment(db, fake_dataset)
    log = Path(manager.get_experiment(exp_id)["log_path"])
    log.parent.mkdir(parents=True)
    log.write_text("Epoch 3: 100%|##| 2/2 [00:01<00:00]`Trainer.fit` stopped: `max_steps=10` reached.\n")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    manager.set_process_info(exp_id, child.pid, 1.0)
    alive, interrupted = manager.recover_runs()
    assert alive == [] and interrupted == []
    assert manager.get_experiment(exp_id)["status"] == "completed"


def test_a_reattached_run_that_crashes_is_failed_with_its_reason(db, fake_dataset, qtbot):
    manager, exp_id = _experiment(db, fake_dataset)
    script = ("import time; time.sleep(1.0); print('Traceback (most recent call last):');"
              "print('torch.OutOfMemoryError: CUDA out of memory.', flush=True)")
    _recovered, (_pid, ok, _msg), _steps, _lines = _orphan_run(manager, exp_id, script, qtbot)
    assert ok is False
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "failed" and "GPU ran out of memory" in exp["error"]
