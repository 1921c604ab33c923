"""Start-up recovery: runs left live by a dead app are re-attached (through the
RunController) or ended with what their files say."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.events import RunEventsFollower
from rave_gui.backend.runs import RunController
from rave_gui.backend.training import TrainingManager

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rave"


def _experiment(db, fake_dataset, name="r", status="running"):
    manager = TrainingManager(db)
    ds = DatasetManager(db).register(fake_dataset)
    exp_id = manager.start_training(dict(name=name, dataset_id=ds, max_steps=10, device="cpu"))
    if status == "running":
        manager.set_status(exp_id, "running")
    return manager, exp_id


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _orphan_run(manager, exp_id, script: str, qtbot, earlier: str = "", token: str | None = None,
                kill_after: float | None = None) -> tuple:
    """A child that writes to the run's log as an orphaned `rave train` would (own
    session, not started by this app); a new RunController re-attaches to it and
    follows it to the end. Returns (reattach_all() result, finished args, steps, lines)."""
    log = Path(manager.get_experiment(exp_id)["log_path"])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(earlier)
    with open(log, "ab") as sink:
        child = subprocess.Popen([sys.executable, "-c", script], stdout=sink, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    controller = RunController(manager)
    steps, lines, ends = [], [], []
    controller.step_changed.connect(lambda e, s, t: steps.append((s, t)))
    controller.log_line.connect(lambda e, line: lines.append(line))
    controller.run_changed.connect(lambda e, what: what == "status" and not controller.is_live(e)
                                   and ends.append(manager.get_experiment(e)["status"]))
    try:
        manager.set_process_info(exp_id, child.pid, psutil.Process(child.pid).create_time())
        manager.set_launch_token(exp_id, token)
        recovered = controller.reattach_all()
        assert controller.is_live(exp_id)
        process = controller.live_run(exp_id).process
        if kill_after is not None:
            qtbot.wait(int(kill_after * 1000))
            os.kill(child.pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: bool(ends), timeout=20_000)
        process.wait(5000)
    finally:
        child.kill()
        child.wait()
    return recovered, (child.pid, process.final_status), steps, lines


def test_dead_process_is_marked_interrupted(db, fake_dataset):
    manager, exp_id = _experiment(db, fake_dataset)
    manager.set_process_info(exp_id, _dead_pid(), 1.0)
    alive, interrupted = manager.recover_runs()
    assert alive == [] and interrupted == [exp_id]
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "interrupted" and exp["pid"] is None
    # no checkpoint: the sentence does not promise one
    assert "saved no checkpoint" in exp["error"] and "Resume it" not in exp["error"]
    with pytest.raises(ValueError, match="no checkpoint"):
        manager.resume_training(exp_id)
    assert manager.get_experiment(exp_id)["status"] == "interrupted"  # not marked running, not failed


def test_an_interrupted_run_keeps_the_points_its_event_files_hold(db, fake_dataset):
    """Points logged after the app stopped following are read before it is marked."""
    manager, exp_id = _experiment(db, fake_dataset)
    run_dir = Path(manager.get_experiment(exp_id)["out_dir"]) / "smoke_run"
    shutil.copytree(FIXTURES / "smoke_run", run_dir)
    manager.set_run_dir(exp_id, run_dir)
    manager.set_process_info(exp_id, _dead_pid(), 1.0)
    manager.recover_runs()
    expected = RunEventsFollower(run_dir).poll(final=True)
    assert expected, "the fixture has points"
    history = manager.get_metric_history(exp_id)
    assert history["val_loss"] == [(m["step"], pytest.approx(m["val_loss"])) for m in expected]
    assert manager.get_experiment(exp_id)["status"] == "interrupted"


def test_a_run_started_with_no_pid_yet_is_not_called_dead_while_its_process_lives(db, fake_dataset):
    """'starting' with a pid that still runs is re-attached, not interrupted."""
    manager, exp_id = _experiment(db, fake_dataset, status="starting")
    me = psutil.Process(os.getpid())
    manager.set_process_info(exp_id, me.pid, me.create_time())
    alive, interrupted = manager.recover_runs()
    assert alive == [(exp_id, me.pid)] and interrupted == []
    assert manager.get_experiment(exp_id)["status"] == "starting"


def test_reused_pid_with_another_start_time_is_not_trusted(db, fake_dataset):
    manager, exp_id = _experiment(db, fake_dataset)
    me = psutil.Process(os.getpid())
    manager.set_process_info(exp_id, me.pid, me.create_time() - 3600)  # same pid, other process
    alive, interrupted = manager.recover_runs()
    assert alive == [] and interrupted == [exp_id]


def test_queued_runs_stay_queued_across_a_restart(db, fake_dataset):
    manager, exp_id = _experiment(db, fake_dataset)
    queued = manager.enqueue_training(dict(name="later", dataset_id=manager.get_experiment(exp_id)["dataset_id"]))
    manager.set_process_info(exp_id, _dead_pid(), 1.0)
    manager.recover_runs()
    assert manager.queued() == [queued]


def test_live_process_is_reattached_and_followed_to_the_end(db, fake_dataset, qtbot):
    manager, exp_id = _experiment(db, fake_dataset)
    script = textwrap.dedent("""
        import time
        time.sleep(1.5)
        print('[rave-gui:abc123] step=5/10', flush=True)
        print('[rave-gui] step=9/10 is not ours', flush=True)
        time.sleep(0.5)
        print('[rave-gui:abc123] step=10/10', flush=True)
        print('`Trainer.fit` stopped: `max_steps=10` reached.', flush=True)
    """)
    recovered, (pid, final), steps, lines = _orphan_run(manager, exp_id, script, qtbot,
                                                        earlier="earlier output\n", token="abc123")
    assert recovered == ([exp_id], [])
    assert final == "completed"
    assert steps[-1] == (10, 10) and (5, 10) in steps and (9, 10) not in steps
    assert "earlier output" not in lines  # the log is followed from where it was
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "completed" and exp["current_step"] == 10
    assert [e["kind"] for e in manager.get_events(exp_id)] == ["started", "running", "reattached", "completed"]


def test_a_run_that_finished_while_the_app_was_closed_is_completed_at_its_last_step(db, fake_dataset):
    manager, exp_id = _experiment(db, fake_dataset)
    manager.set_current_step(exp_id, 9)  # the app saw step 9 of 10 before it closed
    log = Path(manager.get_experiment(exp_id)["log_path"])
    log.parent.mkdir(parents=True)
    log.write_text("Epoch 3: 100%|##| 2/2 [00:01<00:00]`Trainer.fit` stopped: `max_steps=10` reached.\n")
    manager.set_process_info(exp_id, _dead_pid(), 1.0)
    alive, interrupted = manager.recover_runs()
    assert alive == [] and interrupted == []
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "completed" and exp["current_step"] == 10


def test_a_reattached_run_that_crashes_is_failed_with_its_reason(db, fake_dataset, qtbot):
    manager, exp_id = _experiment(db, fake_dataset)
    script = ("import time; time.sleep(1.0); print('Traceback (most recent call last):');"
              "print('torch.OutOfMemoryError: CUDA out of memory.', flush=True)")
    _recovered, (_pid, final), _steps, _lines = _orphan_run(manager, exp_id, script, qtbot)
    assert final == "failed"
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "failed" and "GPU ran out of memory" in exp["error"]


def test_a_reattached_run_killed_by_sigkill_is_failed_not_stopped(db, fake_dataset, qtbot):
    manager, exp_id = _experiment(db, fake_dataset)
    script = "import time\nprint('[rave-gui:t0k3n] step=3/10', flush=True)\ntime.sleep(60)\n"
    _recovered, (_pid, final), _steps, _lines = _orphan_run(manager, exp_id, script, qtbot, token="t0k3n",
                                                            kill_after=1.5)
    exp = manager.get_experiment(exp_id)
    assert final == "failed" and exp["status"] == "failed"
    assert "without finishing" in exp["error"] and "step 3" in exp["error"]
