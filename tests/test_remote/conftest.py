"""Fixtures for runs on another machine: the loopback sshd, a machine record that
reaches it, and a stand-in "python" on the host that runs ``fake_rave.py`` for
``train`` (and the real Python for anything else, such as ``-c`` probes)."""
from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import pytest
from slurm_fixture import loopback_slurm  # noqa: F401 (fixture: started on first use)
from sshd_fixture import loopback_sshd, remove_control_dir, trusted_sshd  # noqa: F401 (fixtures)

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.machines import MachineManager
from rave_gui.backend.training import TrainingManager
from rave_gui.core.database import Database

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def fake_python(tmp_path_factory) -> Path:
    """An executable "python" (in a folder whose name holds a space and a quote);
    the ``set_pace`` fixture sets the fake's seconds per step."""
    folder = tmp_path_factory.mktemp("host") / "bin dir 'x'"
    folder.mkdir()
    script = folder / "python"
    pace = folder / "pace"
    script.write_text("#!/bin/sh\n"
                      f'if [ "$1" = "-c" ]; then exec {sys.executable!s} "$@"; fi\n'
                      f'FAKE_IGNORE_INT="$(cat "{folder / "ignore-int"}" 2>/dev/null)" '
                      f'FAKE_STEP_SECONDS="$(cat "{pace}" 2>/dev/null || echo 0.05)" exec {sys.executable!s} '
                      f'"{HERE / "fake_rave.py"}" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


@pytest.fixture
def ignore_int(fake_python):
    """The fake ignores SIGINT while this fixture is in use (a training that does not stop in time)."""
    flag = Path(fake_python).parent / "ignore-int"
    flag.write_text("1")
    yield
    flag.unlink(missing_ok=True)


@pytest.fixture
def set_pace(fake_python):
    """``set_pace(seconds)``: the fake's seconds per step."""
    def setter(seconds: float) -> None:
        (Path(fake_python).parent / "pace").write_text(str(seconds))
    return setter


class RemoteEnv:
    """A database in a data folder whose path holds spaces, a machine record for the
    loopback sshd (host key accepted), and a registered dataset."""

    def __init__(self, root: Path, server, python: str, dataset: Path):
        self.root = root
        self.server = server
        self.db = Database(root / "data dir" / "db.sqlite3")
        self.manager = TrainingManager(self.db, gpus=[])
        self.machines = MachineManager(self.db)
        self.work = server.work_dir / f"work {root.name}"
        self.machine_id = self.machines.add("loopback", server.alias, python=python, work_dir=str(self.work),
                                            ssh_config=str(server.client_config))
        self.dataset_id = DatasetManager(self.db).register(dataset)

    @property
    def target(self):
        return self.machines.target(self.machine_id)

    def config(self, **overrides) -> dict:
        cfg = dict(name="remote run", dataset_id=self.dataset_id, base_config="v2_small", batch_size=2,
                   device="cpu", val_every=10, log_every=5, max_steps=40, machine_id=self.machine_id)
        cfg.update(overrides)
        return cfg

    def close(self) -> None:
        try:
            self.target.close_master()
        except Exception:  # noqa: BLE001
            pass
        remove_control_dir(Path(self.db.path).parent)
        self.db.close()


@pytest.fixture
def remote_env(trusted_sshd, fake_python, tmp_path, fake_dataset):
    env = RemoteEnv(tmp_path, trusted_sshd, str(fake_python), fake_dataset)
    yield env
    env.close()


def wait_for(predicate, timeout: float = 60.0, app=None, message: str = "") -> None:
    """Spin the event loop until ``predicate()`` (a failed assert otherwise)."""
    from PyQt6.QtCore import QCoreApplication
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s: {message}")
        QCoreApplication.processEvents()
        time.sleep(0.02)

