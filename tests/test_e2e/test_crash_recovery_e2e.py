"""The app is killed (SIGKILL) mid-run: the real training goes on in its own process
group, and the next start re-attaches to it and follows it to the end."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.runs import RunController
from rave_gui.backend.training import TrainingManager
from rave_gui.core.database import Database

pytestmark = pytest.mark.e2e
APP = Path(__file__).with_name("app_process.py")


def test_app_killed_mid_run_then_reattached(tmp_path, rave_dataset, qtbot):
    db_path = tmp_path / "crash.sqlite3"
    db = Database(db_path)
    ds_id = DatasetManager(db).register(rave_dataset)
    db.close()
    app = subprocess.Popen([sys.executable, str(APP), str(db_path), str(ds_id), "crash run", "30"],
                           stdout=subprocess.PIPE, text=True)
    try:
        exp_id = int(app.stdout.readline().split("=", 1)[1])
        db = Database(db_path)
        manager = TrainingManager(db)
        deadline = time.monotonic() + 600
        while (manager.get_experiment(exp_id)["current_step"] or 0) < 8 and time.monotonic() < deadline:
            assert app.poll() is None, "the app ended early"
            time.sleep(0.5)
        pid = manager.get_experiment(exp_id)["pid"]
        os.kill(app.pid, signal.SIGKILL)
        app.wait(10)
    finally:
        if app.poll() is None:
            app.kill()
    assert psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    points_before = manager.get_metric_history(exp_id)

    # "next start": a new controller on the same database finds the run and re-attaches
    controller = RunController(TrainingManager(db))
    manager = controller.manager
    steps = []
    controller.step_changed.connect(lambda e, s, t: steps.append(s))
    try:
        attached, interrupted = controller.reattach_all()
        assert attached == [exp_id] and interrupted == []
        process = controller.live_run(exp_id).process
        qtbot.waitUntil(lambda: not controller.is_live(exp_id), timeout=600_000)
        process.wait(5000)
    finally:
        if psutil.pid_exists(pid):
            os.killpg(pid, signal.SIGKILL)
    exp = manager.get_experiment(exp_id)
    assert exp["status"] == "completed", exp["error"]
    assert steps[-1] == 30
    history = manager.get_metric_history(exp_id)
    for key, points in history.items():
        assert len(points) == len({s for s, _ in points}), f"{key} double-counted"
    assert all(p in history["loss"] for p in points_before.get("loss", []))
    assert [s for s, _ in history["loss"]][-1] >= 24  # losses logged after the crash were read
    assert [e["kind"] for e in manager.get_events(exp_id)] == ["started", "running", "reattached", "completed"]
    db.close()
