"""Runs on a Slurm cluster through the RunController: a real single-node Slurm
(``scripts/slurm_for_tests.py``) reached through its "login node", the loopback
sshd, with the fast stand-in for the launcher (``fake_rave.py``) in the jobs. The
end-to-end tests with the real ``rave`` are in ``tests/test_e2e/test_slurm_e2e.py``."""
from __future__ import annotations

from pathlib import Path

import pytest

from rave_gui.backend.machines import remote_run
from rave_gui.backend.runs import RunController
from rave_gui.backend.slurm_process import SCRIPT_NAME, SlurmTrainingProcess
from run_recorder import Recorder  # tests/ helper

pytestmark = [pytest.mark.ssh, pytest.mark.slurm]


def make_cluster(env, cluster, **settings) -> int:
    """The loopback sshd as the cluster's login node."""
    values = dict(partition=cluster.partition, gpus=0, cpus=1, time="10", margin=60, setup=cluster.shell_setup())
    values.update(settings)
    env.machines.update(env.machine_id, slurm=values)
    return env.machine_id


def start(env, **config):
    controller = RunController(env.manager)
    exp_id = env.manager.start_training(env.config(**config))
    rec = Recorder(controller, exp_id)
    notes = []
    controller.run_changed.connect(lambda e, what: notes.append(controller.notes.get(e)) if e == exp_id else None)
    controller._launch(exp_id)
    return controller, exp_id, rec, notes


def finish(qtbot, controller, rec, timeout=180_000):
    qtbot.waitUntil(lambda: rec.result is not None, timeout=timeout)
    qtbot.waitUntil(lambda: not any(p.isRunning() for p in controller._ending), timeout=10_000)


def test_a_job_is_submitted_followed_and_completes(remote_env, loopback_slurm, set_pace, qtbot):
    make_cluster(remote_env, loopback_slurm)
    set_pace(0.02)
    controller, exp_id, rec, notes = start(remote_env, name="slurm run 'one'", max_steps=40)
    process = controller.live_run(exp_id).process
    assert isinstance(process, SlurmTrainingProcess)
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None), "\n".join(rec.lines[-20:])
    record = remote_run(remote_env.db, exp_id)
    assert record["job_id"] and record["job_id"].isdigit()
    # Slurm ran it: scontrol knows the job as COMPLETED, and its exit code file is in the run's folder
    shown = loopback_slurm.run("scontrol", "show", "job", "-o", record["job_id"]).stdout
    assert "JobState=COMPLETED" in shown
    assert (Path(record["out_dir"]) / f"exitcode-{record['job_id']}").read_text().strip() == "0"
    # the history is the host's, the events name the job, the batch script is kept here
    history = {k: dict(v) for k, v in remote_env.manager.get_metric_history(exp_id).items()}
    assert sorted(history["loss"]) == [4, 9, 14, 19, 24, 29, 34, 39]
    assert sorted(history["val_loss"]) == [9, 19, 29, 39]
    events = remote_env.manager.get_events(exp_id)
    assert any(e["kind"] == "submitted" and e["detail"] == f"job {record['job_id']}" for e in events)
    exp = remote_env.manager.get_experiment(exp_id)
    script = (Path(exp["out_dir"]) / SCRIPT_NAME).read_text()
    assert f"#SBATCH --partition={loopback_slurm.partition}" in script
    assert any(n and "running on" in n and record["job_id"] in n for n in notes)
    assert controller.notes.get(exp_id) is None  # the note goes with the run


def test_a_partition_that_does_not_exist_is_refused_with_slurms_reason(remote_env, loopback_slurm, qtbot):
    make_cluster(remote_env, loopback_slurm, partition="nowhere")
    controller, exp_id, rec, _ = start(remote_env)
    finish(qtbot, controller, rec, timeout=60_000)
    status, error = rec.result
    assert status == "failed"
    assert error.startswith("Slurm refused the job") and "partition" in error.lower(), error
    assert remote_run(remote_env.db, exp_id).get("job_id") is None


def test_a_waiting_job_says_why_and_stop_cancels_it(remote_env, loopback_slurm, qtbot):
    make_cluster(remote_env, loopback_slurm, extra="#SBATCH --begin=now+1hour")
    controller, exp_id, rec, notes = start(remote_env)
    qtbot.waitUntil(lambda: (controller.notes.get(exp_id) or "").startswith("pending"), timeout=60_000)
    assert "BeginTime" in controller.notes[exp_id]
    assert remote_env.manager.get_experiment(exp_id)["status"] == "starting"
    job = remote_run(remote_env.db, exp_id)["job_id"]
    controller.stop(exp_id)
    finish(qtbot, controller, rec, timeout=60_000)
    assert rec.result[0] == "stopped"
    assert "CANCELLED" in loopback_slurm.run("scontrol", "show", "job", "-o", job).stdout


def test_stop_while_running_keeps_the_progress(remote_env, loopback_slurm, set_pace, qtbot):
    make_cluster(remote_env, loopback_slurm)
    set_pace(0.2)
    controller, exp_id, rec, _ = start(remote_env, max_steps=2000)
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1] >= 12, timeout=120_000)
    assert remote_env.manager.get_experiment(exp_id)["status"] == "running"
    controller.stop(exp_id)
    finish(qtbot, controller, rec)
    assert rec.result[0] == "stopped"
    exp = remote_env.manager.get_experiment(exp_id)
    checkpoints = remote_env.manager.paths(exp).checkpoints()
    stop = [c for c in checkpoints if c["file"].startswith("stopped-step=")]
    assert stop and stop[0]["step"] >= 12  # the batch shell forwarded INT: the stop checkpoint
    job = remote_run(remote_env.db, exp_id)["job_id"]
    assert "JobState=COMPLETED" in loopback_slurm.run("scontrol", "show", "job", "-o", job).stdout
    # Resume: a new job from the stop checkpoint, in the same run folder
    set_pace(0.02)
    rec = Recorder(controller, exp_id)
    controller.resume(exp_id, max_steps=stop[0]["step"] + 10)
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None), "\n".join(rec.lines[-20:])
    again = remote_run(remote_env.db, exp_id)["job_id"]
    assert again != job and rec.steps[0] >= stop[0]["step"] and rec.steps[-1] == stop[0]["step"] + 10
    assert [e["kind"] for e in remote_env.manager.get_events(exp_id)].count("submitted") == 2


def test_a_job_that_fails_says_why_from_its_log(remote_env, loopback_slurm, qtbot, tmp_path):
    make_cluster(remote_env, loopback_slurm)
    remote_env.machines.update(remote_env.machine_id, python=str(tmp_path / "no such python"))
    controller, exp_id, rec, _ = start(remote_env)
    finish(qtbot, controller, rec)
    status, error = rec.result
    assert status == "failed", rec.lines[-10:]
    assert "no such python" in error and "was not found" in error, error  # exit code 127 from the job's log


def test_the_time_limit_saves_a_checkpoint_and_the_run_goes_on_in_new_jobs(remote_env, loopback_slurm, set_pace,
                                                                          qtbot):
    """A two-minute limit with a 60 s margin: Slurm warns each job (USR1) 30 to 60 s after
    it starts (it checks time limits every 30 s, and warns up to 30 s early), the batch
    shell stops the training (its stop checkpoint) and the app resubmits with --ckpt
    until max_steps: one run, one history, two or more jobs (a job does at most 240
    steps at this pace)."""
    make_cluster(remote_env, loopback_slurm, time="2", margin=60)
    set_pace(0.25)
    controller, exp_id, rec, _ = start(remote_env, max_steps=300, val_every=50)
    finish(qtbot, controller, rec, timeout=400_000)
    assert rec.result == ("completed", None), "\n".join(rec.lines[-30:])
    events = remote_env.manager.get_events(exp_id)
    jobs = [e for e in events if e["kind"] in ("submitted", "resubmitted")]
    assert len(jobs) >= 2, events
    assert jobs[0]["kind"] == "submitted" and all(e["kind"] == "resubmitted" for e in jobs[1:])
    assert all("time limit" in e["detail"] for e in jobs[1:]), jobs
    record = remote_run(remote_env.db, exp_id)
    first = jobs[0]["detail"].split()[1]
    assert (Path(record["out_dir"]) / f"timelimit-{first}").exists()   # the batch shell got USR1
    exp = remote_env.manager.get_experiment(exp_id)
    stops = [c for c in remote_env.manager.paths(exp).checkpoints() if c["file"].startswith("stopped-step=")]
    assert len(stops) >= len(jobs) - 1
    # each new job started from the step where the one before saved its stop checkpoint
    resumed_from = sorted(int(e["detail"].rsplit("step ", 1)[1].rstrip(")").replace(",", "")) for e in jobs[1:])
    assert resumed_from == sorted(c["step"] for c in stops)[:len(resumed_from)]
    # one history across the jobs: every logged step once, up to max_steps
    history = {k: dict(v) for k, v in remote_env.manager.get_metric_history(exp_id).items()}
    assert sorted(history["loss"]) == list(range(4, 300, 5))
    assert exp["current_step"] == 300 and rec.steps[-1] == 300


def _submitted_by_an_earlier_session(env, qtbot, **config):
    """What an earlier app session left: a job submitted, its record (job id), the run running."""
    manager = env.manager
    exp_id = manager.start_training(env.config(**config))
    earlier = SlurmTrainingProcess(manager, exp_id)
    earlier.prepare()
    job_id, _, _ = earlier._launch()
    manager.set_status(exp_id, "running")
    return exp_id, str(job_id)


def test_an_app_restart_follows_the_job_again(remote_env, loopback_slurm, set_pace, qtbot):
    make_cluster(remote_env, loopback_slurm)
    set_pace(0.05)
    exp_id, job_id = _submitted_by_an_earlier_session(remote_env, qtbot, name="earlier", max_steps=60)
    host = Path(remote_run(remote_env.db, exp_id)["out_dir"])
    qtbot.waitUntil(lambda: (host / "train.log").exists() and (host / "train.log").stat().st_size > 2000,
                    timeout=60_000)
    controller = RunController(remote_env.manager)
    rec = Recorder(controller, exp_id)
    attached, interrupted = controller.reattach_all()
    assert attached == [exp_id] and interrupted == []
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None), "\n".join(rec.lines[-20:])
    history = {k: dict(v) for k, v in remote_env.manager.get_metric_history(exp_id).items()}
    assert sorted(history["loss"]) == list(range(4, 60, 5))
    assert "reattached" in [e["kind"] for e in remote_env.manager.get_events(exp_id)]
    assert remote_run(remote_env.db, exp_id)["job_id"] == job_id


def test_a_job_that_ended_while_the_app_was_away(remote_env, loopback_slurm, set_pace, qtbot):
    make_cluster(remote_env, loopback_slurm)
    set_pace(0.01)
    exp_id, job_id = _submitted_by_an_earlier_session(remote_env, qtbot, name="away", max_steps=10)
    host = Path(remote_run(remote_env.db, exp_id)["out_dir"])
    qtbot.waitUntil(lambda: (host / f"exitcode-{job_id}").exists(), timeout=60_000)
    controller = RunController(remote_env.manager)
    rec = Recorder(controller, exp_id)
    assert controller.reattach_all()[0] == [exp_id]
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None)
    assert remote_env.manager.get_experiment(exp_id)["current_step"] == 10


def test_closing_the_app_leaves_the_job_running_and_the_next_start_follows_it(remote_env, loopback_slurm, set_pace,
                                                                             qtbot):
    make_cluster(remote_env, loopback_slurm)
    set_pace(0.1)
    controller, exp_id, rec, _ = start(remote_env, name="overnight", max_steps=80)
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1] >= 5, timeout=60_000)
    assert controller.cluster_ids() == [exp_id]
    job = remote_run(remote_env.db, exp_id)["job_id"]
    controller.stop_all(timeout=30, keep_cluster_jobs=True)          # the window closes
    assert not controller.is_live(exp_id)
    assert remote_env.manager.get_experiment(exp_id)["status"] == "running"
    assert "RUNNING" in loopback_slurm.run("squeue", "-h", "-j", job, "-o", "%T").stdout
    assert "detached" in [e["kind"] for e in remote_env.manager.get_events(exp_id)]
    later = RunController(remote_env.manager)                          # the next start
    rec = Recorder(later, exp_id)
    assert later.reattach_all()[0] == [exp_id]
    finish(qtbot, later, rec)
    assert rec.result == ("completed", None)
    history = {k: dict(v) for k, v in remote_env.manager.get_metric_history(exp_id).items()}
    assert sorted(history["loss"]) == list(range(4, 80, 5))


def test_a_job_killed_at_its_time_limit_continues_from_its_last_validation(remote_env, loopback_slurm, set_pace,
                                                                           ignore_int, qtbot):
    """The training does not stop at the warning (a hung step: SIGINT ignored): Slurm
    kills the job at its limit (TIMEOUT). The run goes on in a new job from the newest
    checkpoint it has, a validation's; the steps after it are dropped from the history
    and logged again."""
    make_cluster(remote_env, loopback_slurm, time="1", margin=30)
    set_pace(0.4)  # a job lasts 60 to 90 s (Slurm kills up to 30 s late): at most 225 steps
    controller, exp_id, rec, _ = start(remote_env, max_steps=260, val_every=20)
    finish(qtbot, controller, rec, timeout=400_000)
    assert rec.result == ("completed", None), "\n".join(rec.lines[-30:])
    jobs = [e for e in remote_env.manager.get_events(exp_id) if e["kind"] in ("submitted", "resubmitted")]
    assert len(jobs) >= 2, jobs
    first = jobs[0]["detail"].split()[1]
    assert "JobState=TIMEOUT" in loopback_slurm.run("scontrol", "show", "job", "-o", first).stdout
    exp = remote_env.manager.get_experiment(exp_id)
    checkpoints = remote_env.manager.paths(exp).checkpoints()
    assert not [c for c in checkpoints if c["file"].startswith("stopped-step=")]  # no stop checkpoint: killed
    from_step = int(jobs[1]["detail"].rsplit("step ", 1)[1].rstrip(")").replace(",", ""))
    assert from_step % 20 == 0  # a validation's checkpoint (every 20 steps)
    history = {k: dict(v) for k, v in remote_env.manager.get_metric_history(exp_id).items()}
    assert sorted(history["loss"]) == list(range(4, 260, 5))  # every step once: the dropped ones logged again
    assert exp["current_step"] == 260


def test_resume_while_the_job_still_runs_follows_that_job(remote_env, loopback_slurm, set_pace, qtbot):
    """The app gave up on a run (it could not reach the login node: ``interrupted``) while
    its job trains on: Resume follows the same job again instead of submitting a second."""
    make_cluster(remote_env, loopback_slurm)
    set_pace(0.1)
    controller, exp_id, rec, _ = start(remote_env, name="given up", max_steps=150)
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1] >= 8, timeout=60_000)
    job = remote_run(remote_env.db, exp_id)["job_id"]
    controller.live_run(exp_id).process.abandon()
    finish(qtbot, controller, rec, timeout=60_000)
    assert rec.result[0] == "interrupted"
    assert "RUNNING" in loopback_slurm.run("squeue", "-h", "-j", job, "-o", "%T").stdout
    later = RunController(remote_env.manager)
    rec = Recorder(later, exp_id)
    later.resume(exp_id)
    qtbot.waitUntil(lambda: any("follows it again" in w for w in rec.warnings), timeout=30_000)
    finish(qtbot, later, rec)
    assert rec.result == ("completed", None)
    assert remote_run(remote_env.db, exp_id)["job_id"] == job  # the same job, not a second one
    assert [e["kind"] for e in remote_env.manager.get_events(exp_id)].count("submitted") == 1
