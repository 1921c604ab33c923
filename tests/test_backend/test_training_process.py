"""TrainingProcess with a stand-in `rave` (a real child process printing what the
launcher prints): only this launch's token moves the step, and a database that
does not answer never ends the training."""
from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
import time

import pytest

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.training import TrainingManager
from rave_gui.backend.training_process import TrainingProcess
from rave_gui.core.database import Database


@pytest.fixture(autouse=True)
def use_fake_rave(monkeypatch):
    """The process runs the `rave` it is given (the real one comes first otherwise)."""
    from pathlib import Path

    from rave_gui.backend import rave_cli
    monkeypatch.setattr(rave_cli, "find_rave", lambda setting=None: Path(setting))


def fake_rave(tmp_path, body: str):
    """An executable `rave` that runs ``body`` (Python; RAVE_GUI_TOKEN is in its env)."""
    path = tmp_path / "bin" / "rave"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!{sys.executable}\nimport os, sys, time\nTOKEN = os.environ['RAVE_GUI_TOKEN']\n"
                    + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def run_to_end(qtbot, manager, exp_id, rave, timeout=30_000):
    process = TrainingProcess(manager, exp_id, rave=rave, launcher=False)
    steps, warnings = [], []
    process.step_update.connect(lambda s, t: steps.append(s))
    process.warning.connect(warnings.append)
    with qtbot.waitSignal(process.finished, timeout=timeout) as blocker:
        process.start()
    assert process.wait(5000)
    return process, steps, warnings, tuple(blocker.args)


@pytest.fixture
def run(db, fake_dataset, tmp_path):
    manager = TrainingManager(db, runs_root=tmp_path / "runs")
    ds = DatasetManager(db).register(fake_dataset)
    return manager, manager.start_training(dict(name="stop twice step=99999 x", dataset_id=ds,
                                                max_steps=40, device="cpu"))


def test_only_this_launchs_token_moves_the_step(qtbot, run, tmp_path):
    manager, exp_id = run
    rave = fake_rave(tmp_path, """
        print(f"[rave-gui:{TOKEN}] step=5/40", flush=True)
        print("[rave-gui] step=39/40", flush=True)                      # printed by someone else
        print(f"[rave-gui:{TOKEN}x] step=38/40", flush=True)            # a token that is not ours
        print(f"[rave-gui:{TOKEN}] step=37/40 and more", flush=True)    # not a whole launcher line
        out = "/runs/1/stop twice step=99999 x_abc/version_0/checkpoints/stopped-step=8.ckpt"
        print(f"[rave-gui:{TOKEN}] checkpoint={out} step=8", flush=True)
        print(f"[rave-gui:{TOKEN}] step=8/40", flush=True)
    """)
    process, steps, _warnings, (ok, _message) = run_to_end(qtbot, manager, exp_id, rave)
    assert steps == [5, 8]
    assert manager.get_experiment(exp_id)["current_step"] == 8
    assert len(process.token) == 16 and manager.get_experiment(exp_id)["launch_token"] == process.token


def test_a_locked_database_never_ends_the_training(qtbot, fake_dataset, tmp_path):
    """Another program holds the write lock for 4 s while the run logs: the run goes
    on, the person is told, and the points are written once the lock is gone."""
    db = Database(tmp_path / "db.sqlite3", timeout=0.2)
    manager = TrainingManager(db, runs_root=tmp_path / "runs")
    ds = DatasetManager(db).register(fake_dataset)
    exp_id = manager.start_training(dict(name="locked", dataset_id=ds, max_steps=20, device="cpu"))
    locker = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3, sys, time
        conn = sqlite3.connect({str(db.path)!r}, isolation_level=None)
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE"); break
            except sqlite3.OperationalError:
                time.sleep(0.05)
        print("locked", flush=True)
        time.sleep(4)
        conn.execute("COMMIT")
    """)], stdout=subprocess.PIPE, text=True)
    assert locker.stdout.readline().strip() == "locked"
    rave = fake_rave(tmp_path, """
        for step in range(1, 21):
            print(f"[rave-gui:{TOKEN}] step={step}/20", flush=True)
            time.sleep(0.3)
        print("`Trainer.fit` stopped: `max_steps=20` reached.", flush=True)
    """)
    try:
        t0 = time.monotonic()
        process, steps, warnings, (ok, message) = run_to_end(qtbot, manager, exp_id, rave)
    finally:
        locker.wait(10)
    assert ok is True and process.final_status == "completed" and process.returncode == 0, (message, process.tail)
    assert steps[-1] == 20 and time.monotonic() - t0 < 20
    assert process.hook_errors > 0 and any("keeps running" in w for w in warnings)
    assert manager.get_experiment(exp_id)["current_step"] == 20  # written once the lock was gone
