"""The real `rave train` on a "remote" host: the loopback OpenSSH server, on the CPU.

One run, shared by every check (about three minutes on two cores): register the
machine and accept its host key, train through the RunController with
``machine_id``, lose the connection mid-run (master closed, server not listening
for a while) and reconnect with no point lost or doubled, stop mid-run and resume
from the stop step with the host's checkpoint, export on the host and get a
``.ts`` back that ``torch.jit.load`` opens. The app reaches the host's work folder
only through ssh and rsync (``SSHTarget``); the test looks at it directly to check.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sshd_fixture import loopback_sshd, remove_control_dir  # noqa: F401 (fixture)

from rave_gui.backend.checkpoints import list_checkpoints
from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.machines import MachineManager, remote_run
from rave_gui.backend.runs import RunController
from run_recorder import Recorder, export_run, host_points  # tests/ helper
from rave_gui.backend.ssh import accept_host_key
from rave_gui.backend.training import TrainingManager
from rave_gui.core.database import Database

pytestmark = [pytest.mark.e2e, pytest.mark.ssh]




def finish(qtbot, controller, rec, timeout):
    qtbot.waitUntil(lambda: rec.result is not None, timeout=timeout)
    qtbot.waitUntil(lambda: not any(p.isRunning() for p in controller._ending), timeout=10_000)


def test_remote_training_over_ssh_end_to_end(loopback_sshd, rave_dataset, tmp_path, qtbot):  # noqa: F811
    server = loopback_sshd
    server.known_hosts.write_text("")
    db = Database(tmp_path / "data dir" / "db.sqlite3")
    machines = MachineManager(db)
    manager = TrainingManager(db, gpus=[])
    try:
        # -- register the host; its key is unknown, shown, accepted --------------------------
        machine_id = machines.add("loopback GPU box", server.alias, python=sys.executable,
                                  work_dir=str(server.work_dir / "rave work"), ssh_config=str(server.client_config))
        checks = machines.test(machine_id)
        assert checks[-1].name == "host key" and server.host_fingerprint() in checks[-1].message
        accept_host_key(checks[-1].data["host_key"])
        checks = machines.test(machine_id)
        assert [c.status for c in checks] == ["ok"] * 6 + ["warning"], [c.message for c in checks]
        dataset_id = DatasetManager(db).register(rave_dataset)

        # -- train on the host --------------------------------------------------------------------
        controller = RunController(manager)
        exp_id = controller.start(dict(name="remote 'e2e' $run", dataset_id=dataset_id, base_config="v2_small",
                                       batch_size=2, device="cpu", val_every=10, log_every=5, max_steps=2000,
                                       machine_id=machine_id))
        rec = Recorder(controller, exp_id)
        qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1] >= 6, timeout=300_000)
        host = Path(remote_run(db, exp_id)["out_dir"])
        assert str(host).startswith(str(server.work_dir / "rave work" / "runs"))

        # -- the connection drops: the master is closed and nothing listens for a while --------
        server.stop_listener()
        machines.target(machine_id).close_master()
        try:
            qtbot.waitUntil(lambda: any("reconnecting" in w for w in rec.warnings), timeout=60_000)
            size = (host / "train.log").stat().st_size
            qtbot.waitUntil(lambda: (host / "train.log").stat().st_size > size + 200, timeout=60_000)
        finally:
            server.restart_listener()
        qtbot.waitUntil(lambda: any("again" in w for w in rec.warnings), timeout=60_000)

        # -- stop mid-run (after two validations: checkpoints exist), then resume ------------
        qtbot.waitUntil(lambda: rec.steps[-1] >= 21, timeout=300_000)
        controller.stop(exp_id)
        finish(qtbot, controller, rec, timeout=120_000)
        exp = manager.get_experiment(exp_id)
        assert rec.result == ("stopped", None), "\n".join(rec.lines[-30:])
        stop_step = exp["current_step"]
        assert 21 <= stop_step < 2000 and rec.steps[-1] == stop_step
        ckpts = list_checkpoints(exp["run_dir"])
        stop = [c for c in ckpts if c["file"].startswith("stopped-step=")]
        assert stop and stop[0]["resume"] and stop[0]["remote"] and abs(stop[0]["step"] - stop_step) <= 1
        assert not list(Path(exp["out_dir"]).rglob("*.ckpt"))       # the checkpoints stay on the host
        assert len(rec.pairs()) == len(set(rec.pairs()))            # nothing sent twice

        controller2 = RunController(manager)
        rec2 = Recorder(controller2, exp_id)
        controller2.resume(exp_id, max_steps=stop_step + 8)
        finish(qtbot, controller2, rec2, timeout=300_000)
        assert rec2.result == ("completed", None), "\n".join(rec2.lines[-30:])
        assert stop_step <= rec2.steps[0] <= stop_step + 3 and rec2.steps[-1] == stop_step + 8

        # -- the history is exactly what the host's event files say ----------------------------
        host_run = Path(remote_run(db, exp_id)["run_dir"])
        assert (host_run / "version_1").is_dir()
        expected = host_points(host_run)
        stored = {k: dict(v) for k, v in manager.get_metric_history(exp_id).items()}
        assert stored.keys() == expected.keys()
        for key in expected:
            assert stored[key] == pytest.approx(expected[key]), key
        assert [s for s in sorted(stored["val_loss"])][:2] == [9, 19] and stored["loss"][4] > 0
        assert min(s for s in stored["loss"] if s > stop_step) <= stop_step + 5

        # -- export on the host, the .ts comes back --------------------------------------------
        ok, message = export_run(qtbot, RunController(manager), exp_id, tmp_path / "models")
        assert ok, message
        ts = tmp_path / "models" / "remote 'e2e' $run_streaming.ts"
        assert ts.is_file() and ts.stat().st_size > 1_000_000
        assert db.query_one("SELECT path FROM exports WHERE experiment_id = ?", (exp_id,))[0] == str(ts)
        check = ("import sys, torch; m = torch.jit.load(sys.argv[1]); y = m.forward(torch.zeros(1, 1, 8192));"
                 " print(tuple(y.shape))")
        out = subprocess.run([sys.executable, "-c", check, str(ts)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and out.stdout.strip().startswith("(1, 1,"), out.stderr[-2000:]
    finally:
        try:
            machines.target(machines.list()[0]).close_master()
        except Exception:  # noqa: BLE001
            pass
        remove_control_dir(machines.data_dir)
        db.close()
