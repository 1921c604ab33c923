"""The real `rave train` on a Slurm cluster: a real single-node Slurm
(``scripts/slurm_for_tests.py``) whose "login node" is the loopback OpenSSH server,
on the CPU, v2_small.

One run, shared by the checks (about three minutes on two cores): the cluster is
registered and tested (``sinfo`` of the partition); the run is submitted with a
two-minute time limit and a 60 s checkpoint margin, so Slurm warns each job (USR1)
30 to 60 s after it starts, the training saves its stop checkpoint, and the app
resubmits it with ``--ckpt``: one history, continued from each stop step across two or more jobs to
max_steps, with losses and validations. Then the model is exported as a short job
(``srun``) and comes back. A run with a bad override fails with a sentence from
its log; a partition that does not exist is refused at submission.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from slurm_fixture import loopback_slurm  # noqa: F401 (fixture)
from sshd_fixture import loopback_sshd, remove_control_dir, trusted_sshd  # noqa: F401 (fixtures)

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.machines import MachineManager, remote_run
from rave_gui.backend.runs import RunController
from rave_gui.backend.training import TrainingManager
from rave_gui.core.database import Database
from run_recorder import Recorder, export_run, host_points  # tests/ helper

pytestmark = [pytest.mark.e2e, pytest.mark.ssh, pytest.mark.slurm]


def finish(qtbot, controller, rec, timeout):
    qtbot.waitUntil(lambda: rec.result is not None, timeout=timeout)
    qtbot.waitUntil(lambda: not any(p.isRunning() for p in controller._ending), timeout=10_000)


def test_training_on_slurm_end_to_end(trusted_sshd, loopback_slurm, rave_dataset, tmp_path, qtbot):  # noqa: F811
    server, cluster = trusted_sshd, loopback_slurm
    db = Database(tmp_path / "data dir" / "db.sqlite3")
    machines = MachineManager(db)
    manager = TrainingManager(db, gpus=[])
    try:
        settings = dict(partition=cluster.partition, gpus=0, cpus=2, time="2", margin=60,
                        setup=cluster.shell_setup(), export="job")
        machine_id = machines.add("loopback cluster", server.alias, python=sys.executable,
                                  work_dir=str(server.work_dir / "slurm work"), ssh_config=str(server.client_config),
                                  slurm=settings)
        checks = machines.test(machine_id)
        assert all(c.status == "ok" for c in checks), [c.message for c in checks]
        partition = next(c for c in checks if c.name == "partition")
        assert partition.data["nodes"] == 1 and cluster.partition in partition.message
        dataset_id = DatasetManager(db).register(rave_dataset)
        base = dict(dataset_id=dataset_id, base_config="v2_small", batch_size=2, device="cpu", val_every=10,
                    log_every=5, machine_id=machine_id)

        # -- a partition that does not exist: refused at submission, with Slurm's reason -----------
        machines.update(machine_id, slurm={"partition": "nowhere"})
        controller = RunController(manager)
        refused = controller.start(dict(base, name="refused", max_steps=20))
        rec = Recorder(controller, refused)
        finish(qtbot, controller, rec, timeout=120_000)
        assert rec.result[0] == "failed" and "Slurm refused the job" in rec.result[1], rec.result
        assert "partition" in rec.result[1].lower()
        machines.update(machine_id, slurm={"partition": cluster.partition})

        # -- a bad override: the job fails, the sentence comes from its log ------------------------
        bad = controller.start(dict(base, name="bad", max_steps=20, overrides=["RAVE.no_such_parameter = 3"]))
        rec = Recorder(controller, bad)
        finish(qtbot, controller, rec, timeout=300_000)
        assert rec.result[0] == "failed", "\n".join(rec.lines[-20:])
        assert "no_such_parameter" in rec.result[1], rec.result[1]
        job = remote_run(db, bad)["job_id"]
        assert "JobState=FAILED" in cluster.run("scontrol", "show", "job", "-o", job).stdout

        # -- the run: time limit, stop checkpoint, resubmission, to max_steps -----------------------
        exp_id = controller.start(dict(base, name="on the cluster", max_steps=100))  # a job does < 80
        rec = Recorder(controller, exp_id)
        finish(qtbot, controller, rec, timeout=600_000)
        assert rec.result == ("completed", None), "\n".join(rec.lines[-30:])
        events = manager.get_events(exp_id)
        jobs = [e for e in events if e["kind"] in ("submitted", "resubmitted")]
        assert len(jobs) >= 2 and all("time limit" in e["detail"] for e in jobs[1:]), events
        exp = manager.get_experiment(exp_id)
        assert exp["current_step"] == 100
        host_run = Path(remote_run(db, exp_id)["run_dir"])
        assert (host_run / "version_1").is_dir()                         # RAVE's new version per job
        stops = sorted(int(p.name.split("=")[1].split(".")[0])
                       for p in host_run.glob("version_*/checkpoints/stopped-step=*.ckpt"))
        assert len(stops) >= len(jobs) - 1 and 0 < stops[0] < 100
        # one history, the host's: losses and validations across the jobs, each logged step once
        expected = host_points(host_run)
        stored = {k: dict(v) for k, v in manager.get_metric_history(exp_id).items()}
        assert stored.keys() == expected.keys()
        for key in expected:
            assert stored[key] == pytest.approx(expected[key]), key
        logged = sorted(stored["loss"])
        # no gap longer than the logging interval across the jobs (each new job logs on its own
        # cadence from its stop step, and Lightning logs the step it stops at), up to the end
        assert logged[0] == 4 and logged[-1] >= 94 and all(b - a <= 5 for a, b in zip(logged, logged[1:]))
        assert min(s for s in logged if s > stops[0]) <= stops[0] + 5
        assert min(stored["val_loss"]) < stops[0] < max(stored["val_loss"])   # validations in both jobs

        # -- export as a short job; the .ts comes back ---------------------------------------------
        ok, message = export_run(qtbot, controller, exp_id, tmp_path / "models")
        assert ok, message
        ts = tmp_path / "models" / "on the cluster_streaming.ts"
        assert ts.is_file() and ts.stat().st_size > 1_000_000
        listed = cluster.run("squeue", "-h", "-t", "all", "-o", "%j %T").stdout + \
            cluster.run("scontrol", "show", "job", "-o").stdout
        assert "rave-gui-export" in listed                               # it ran as a job
    finally:
        try:
            machines.target(machines.list()[0]).close_master()
        except Exception:  # noqa: BLE001
            pass
        remove_control_dir(machines.data_dir)
        db.close()
