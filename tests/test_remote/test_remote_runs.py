"""Runs on another machine through the RunController, over the real loopback sshd,
with a fast stand-in for the launcher on the host (``fake_rave.py``: the same
files and lines). The host's folder is reached by the app only over ssh/rsync;
the tests look at it directly to check what the app did."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rave_gui.backend.checkpoints import list_checkpoints
from rave_gui.backend.machines import remote_run
from rave_gui.backend.remote_process import RemoteTrainingProcess
from rave_gui.backend.runs import RunController
from run_recorder import Recorder, host_points  # tests/ helper

pytestmark = pytest.mark.ssh




def start(env, **config):
    controller = RunController(env.manager)
    exp_id = env.manager.start_training(env.config(**config))
    rec = Recorder(controller, exp_id)
    controller._launch(exp_id)
    return controller, exp_id, rec


def finish(qtbot, controller, rec, timeout=120_000):
    qtbot.waitUntil(lambda: rec.result is not None, timeout=timeout)
    qtbot.waitUntil(lambda: not any(p.isRunning() for p in controller._ending), timeout=10_000)


def host_folder(env, exp_id) -> Path:
    return Path(remote_run(env.db, exp_id)["out_dir"])


def assert_history_is_the_hosts(env, exp_id):
    exp = env.manager.get_experiment(exp_id)
    host_run = Path(remote_run(env.db, exp_id)["run_dir"])
    stored = {k: dict(v) for k, v in env.manager.get_metric_history(exp_id).items()}
    expected = host_points(host_run)
    assert stored.keys() == expected.keys()
    for key in expected:
        assert stored[key] == pytest.approx(expected[key]), key
    return exp, stored


def test_run_on_the_host_follows_and_completes(remote_env, set_pace, qtbot):
    set_pace(0.02)
    controller, exp_id, rec = start(remote_env, name="it's $HOME; `x` \"q\"", max_steps=40)
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None), "\n".join(rec.lines[-20:])
    exp, stored = assert_history_is_the_hosts(remote_env, exp_id)
    assert sorted(stored["loss"]) == [4, 9, 14, 19, 24, 29, 34, 39]
    assert sorted(stored["val_loss"]) == [9, 19, 29, 39]
    assert rec.steps[-1] == 40 and exp["current_step"] == 40
    assert len(rec.pairs()) == len(set(rec.pairs()))                   # nothing sent twice
    assert exp["pid"] is None                                          # no local pid for a remote run
    record = remote_run(remote_env.db, exp_id)
    assert record["pid"] and ":" in record["pid_start"] and record["token"] == exp["launch_token"]
    host = host_folder(remote_env, exp_id)
    assert str(host).startswith(str(remote_env.work)) and host.name.startswith(f"{Path(exp['out_dir']).name}-")
    # what the host ran: the remote dataset copy, the host's folders, the token, live output
    call = json.loads(next(host.glob("fake-argv-*.json")).read_text())
    argv = call["argv"][1:]
    assert argv[argv.index("--name") + 1] == "it's $HOME; `x` \"q\""
    dataset = Path(argv[argv.index("--db_path") + 1])
    assert dataset.parent == remote_env.work / "datasets" and (dataset / "data.mdb").is_file()
    assert (dataset / ".rave-gui-complete").is_file()
    assert argv[argv.index("--out_path") + 1] == str(host) and call["cwd"] == str(host)
    assert call["env"]["RAVE_GUI_TOKEN"] == exp["launch_token"] and call["env"]["PYTHONUNBUFFERED"] == "1"
    assert call["env"]["RAVE_GUI_LOG_EVERY"] == "5"
    # the mirror: the same bytes as the host, no checkpoint file
    local_out, local_run = Path(exp["out_dir"]), Path(exp["run_dir"])
    assert local_run.parent == local_out
    assert (local_out / "train.log").read_bytes() == (host / "train.log").read_bytes()
    host_run = Path(record["run_dir"])
    for event in host_run.glob("version_*/events.out.tfevents.*"):
        assert (local_run / event.relative_to(host_run)).read_bytes() == event.read_bytes()
    assert (local_run / "config.gin").read_text().startswith("# fake config")
    assert not list(local_out.rglob("*.ckpt"))
    ckpts = list_checkpoints(local_run)
    assert [c["file"] for c in ckpts] == [f"epoch-epoch={s:04d}.ckpt" for s in (9, 19, 29, 39)]
    assert all(c["remote"] and c["size"] > 0 for c in ckpts) and ckpts[-1]["resume"]


def test_the_dataset_is_sent_once(remote_env, set_pace, qtbot):
    set_pace(0.01)
    controller, first, rec = start(remote_env, name="first", max_steps=5)
    finish(qtbot, controller, rec)
    assert any("sending the dataset" in line for line in rec.lines)
    copy = next((remote_env.work / "datasets").iterdir())
    stamp = (copy / "data.mdb").stat().st_mtime_ns, (copy / ".rave-gui-complete").stat().st_mtime_ns
    controller, second, rec = start(remote_env, name="second", max_steps=5)
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None)
    assert not any("sending the dataset" in line for line in rec.lines)
    assert ((copy / "data.mdb").stat().st_mtime_ns, (copy / ".rave-gui-complete").stat().st_mtime_ns) == stamp
    assert len(list((remote_env.work / "datasets").iterdir())) == 1


def test_stop_on_the_host_then_resume_from_the_stop_step(remote_env, set_pace, qtbot):
    set_pace(0.15)
    controller, exp_id, rec = start(remote_env, name="stop me", max_steps=400)
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1] >= 12, timeout=60_000)
    controller.stop(exp_id)
    assert remote_env.manager.get_experiment(exp_id)["status"] == "stopping"
    finish(qtbot, controller, rec, timeout=60_000)
    exp = remote_env.manager.get_experiment(exp_id)
    assert rec.result == ("stopped", None) and exp["current_step"] == rec.steps[-1]
    stop_step = exp["current_step"]
    stop = [c for c in list_checkpoints(exp["run_dir"]) if c["file"].startswith("stopped-step=")]
    assert stop and stop[0]["step"] == stop_step and stop[0]["resume"] and stop[0]["remote"]
    assert not any(p.status() != "zombie" for p in _host_processes(remote_env, exp_id))

    set_pace(0.02)
    controller2 = RunController(remote_env.manager)
    rec2 = Recorder(controller2, exp_id)
    controller2.resume(exp_id, max_steps=stop_step + 12)
    finish(qtbot, controller2, rec2)
    assert rec2.result == ("completed", None), "\n".join(rec2.lines[-20:])
    assert stop_step < rec2.steps[0] <= stop_step + 2 and rec2.steps[-1] == stop_step + 12
    host = Path(remote_run(remote_env.db, exp_id)["run_dir"])
    calls = [json.loads(p.read_text())["argv"] for p in sorted(host_folder(remote_env, exp_id).glob("fake-argv-*"))]
    assert any(a[a.index("--ckpt") + 1] == str(host) for a in calls if "--ckpt" in a)  # the host's run folder
    assert (Path(remote_env.manager.get_experiment(exp_id)["run_dir"]) / "version_1").is_dir()
    assert_history_is_the_hosts(remote_env, exp_id)


def _host_processes(env, exp_id):
    import psutil
    record = remote_run(env.db, exp_id)
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == record["pgid"]:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def test_a_dropped_connection_reconnects_and_loses_nothing(remote_env, set_pace, qtbot):
    """The master connection is closed and the server stops listening for a while:
    the training goes on on the host, the app says it reconnects, then follows
    again; the history equals the host's event files, nothing sent twice."""
    set_pace(0.1)
    server = remote_env.server
    controller, exp_id, rec = start(remote_env, name="dropped", max_steps=120, val_every=20)
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1] >= 10, timeout=60_000)
    try:
        server.stop_listener()
        remote_env.target.close_master()
        dropped_at = rec.steps[-1]
        qtbot.waitUntil(lambda: any("reconnecting" in w for w in rec.warnings), timeout=30_000)
        assert "The training goes on there" in rec.warnings[0]
        host_log = host_folder(remote_env, exp_id) / "train.log"
        grown = host_log.stat().st_size
        time.sleep(2.5)
        assert host_log.stat().st_size > grown  # it trains on while the app cannot see it
    finally:
        server.restart_listener()
    qtbot.waitUntil(lambda: any("again" in w for w in rec.warnings), timeout=60_000)
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None)
    assert rec.steps[-1] == 120 and max(rec.steps) > dropped_at
    assert len(rec.pairs()) == len(set(rec.pairs()))
    exp, stored = assert_history_is_the_hosts(remote_env, exp_id)
    assert sorted(stored["loss"]) == list(range(4, 120, 5))


def test_a_run_killed_on_the_host_fails_with_a_sentence(remote_env, set_pace, qtbot):
    set_pace(0.1)
    controller, exp_id, rec = start(remote_env, name="killed", max_steps=500)
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1] >= 3, timeout=60_000)
    os.killpg(remote_run(remote_env.db, exp_id)["pgid"], signal.SIGKILL)
    finish(qtbot, controller, rec, timeout=60_000)
    status, error = rec.result
    assert status == "failed" and "ended without an exit code" in error and "killed" in error


def test_reattach_follows_a_run_started_by_an_earlier_session(remote_env, set_pace, qtbot):
    """An earlier app session launched it (the record holds pid and start time);
    a new controller re-attaches: the points logged meanwhile are read, the run
    completes."""
    set_pace(0.05)
    manager = remote_env.manager
    exp_id = manager.start_training(remote_env.config(name="earlier", max_steps=60))
    earlier = RemoteTrainingProcess(manager, exp_id)
    earlier.prepare()
    pid, _pgid, _start = earlier._launch()
    manager.set_status(exp_id, "running")
    qtbot.waitUntil(lambda: (host_folder(remote_env, exp_id) / "train.log").stat().st_size > 2000, timeout=30_000)
    controller = RunController(manager)
    rec = Recorder(controller, exp_id)
    controller._launch(exp_id, attach_pid=pid)
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None)
    exp, stored = assert_history_is_the_hosts(remote_env, exp_id)
    assert sorted(stored["loss"]) == list(range(4, 60, 5))
    assert "reattached" in [e["kind"] for e in manager.get_events(exp_id)]


def test_reattach_to_a_run_that_ended_while_away(remote_env, set_pace, qtbot):
    set_pace(0.01)
    manager = remote_env.manager
    exp_id = manager.start_training(remote_env.config(name="ended away", max_steps=10))
    earlier = RemoteTrainingProcess(manager, exp_id)
    earlier.prepare()
    pid, _pgid, _start = earlier._launch()
    manager.set_status(exp_id, "running")
    token = remote_run(remote_env.db, exp_id)["token"]
    qtbot.waitUntil(lambda: (host_folder(remote_env, exp_id) / f"exitcode-{token}").exists(), timeout=30_000)
    controller = RunController(manager)
    rec = Recorder(controller, exp_id)
    controller._launch(exp_id, attach_pid=pid)
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None)
    assert manager.get_experiment(exp_id)["current_step"] == 10


def test_unreachable_host_at_start_fails_with_a_sentence(remote_env, qtbot):
    remote_env.machines.update(remote_env.machine_id, host=f"{remote_env.server.alias}-closed")
    controller, exp_id, rec = start(remote_env, name="nowhere")
    finish(qtbot, controller, rec, timeout=60_000)
    status, error = rec.result
    assert status == "failed" and "Nothing answers" in error and "connection refused" in error
    assert remote_run(remote_env.db, exp_id) is None  # nothing half-registered


def test_lazy_dataset_is_refused(remote_env, qtbot, tmp_path):
    from rave_gui.backend.datasets import DatasetManager
    lazy = tmp_path / "lazy"
    lazy.mkdir()
    (lazy / "metadata.yaml").write_text("channels: 1\nlazy: true\nn_seconds: 10\nsr: 44100\n")
    (lazy / "data.mdb").write_bytes(b"\0" * 16)
    ds = DatasetManager(remote_env.db).register(lazy)
    controller, exp_id, rec = start(remote_env, name="lazy", dataset_id=ds)
    finish(qtbot, controller, rec, timeout=60_000)
    assert rec.result[0] == "failed" and "lazily" in rec.result[1]


def test_nothing_is_left_running_on_the_host(remote_env, set_pace, qtbot):
    set_pace(0.02)
    controller, exp_id, rec = start(remote_env, name="tidy", max_steps=10)
    finish(qtbot, controller, rec)
    leftovers = [p for p in _host_processes(remote_env, exp_id) if p.status() != "zombie"]
    assert leftovers == []
    out = subprocess.run(["pgrep", "-f", "fake_rave.py"], capture_output=True, text=True)
    assert out.stdout.strip() == "" or all(
        not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
        for pid in out.stdout.split())


def test_export_on_the_host_comes_back(remote_env, set_pace, qtbot, tmp_path):
    set_pace(0.01)
    controller, exp_id, rec = start(remote_env, name="export 'me'", max_steps=10)
    finish(qtbot, controller, rec)
    results, progress = [], []
    controller.export_done.connect(lambda e, ok, msg: results.append((ok, msg)))
    controller.export_progress.connect(lambda e, pct, what: progress.append(pct))
    export = controller.export(exp_id, {"output_dir": tmp_path / "models dir", "streaming": True})
    qtbot.waitUntil(lambda: bool(results), timeout=60_000)
    export.wait(10_000)
    assert results[0][0], results
    ts = tmp_path / "models dir" / "export 'me'_streaming.ts"
    host_ts = host_folder(remote_env, exp_id) / "export" / ts.name
    assert ts.read_bytes() == host_ts.read_bytes()
    assert progress[-1] == 100 and progress == sorted(progress)
    row = remote_env.db.query_one("SELECT * FROM exports WHERE experiment_id = ?", (exp_id,))
    assert row["path"] == str(ts) and row["size_bytes"] == ts.stat().st_size and row["streaming"] == 1


def test_a_stop_that_cannot_reach_the_host_gives_up_then_resume_follows_it_again(remote_env, set_pace, qtbot,
                                                                                  monkeypatch):
    """The host stops answering and the person stops the run (or closes the app): the
    app gives up after ``stop_give_up`` (the run is ``interrupted``: it may still train
    there). Once the host answers, Resume finds it still training and follows it
    again instead of starting a second one."""
    monkeypatch.setattr(RemoteTrainingProcess, "stop_give_up", 2.0)
    set_pace(0.1)
    server = remote_env.server
    controller, exp_id, rec = start(remote_env, name="unreachable stop", max_steps=150)
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1] >= 12, timeout=60_000)
    server.stop_listener()
    remote_env.target.close_master()
    try:
        controller.stop(exp_id)
        finish(qtbot, controller, rec, timeout=90_000)
        assert rec.result[0] == "interrupted"
        assert any("could not reach" in w and "may still train" in w for w in rec.warnings)
    finally:
        server.restart_listener()
    record = remote_run(remote_env.db, exp_id)
    assert any(p.status() != "zombie" for p in _host_processes(remote_env, exp_id))  # it trains on
    controller2 = RunController(remote_env.manager)
    rec2 = Recorder(controller2, exp_id)
    controller2.resume(exp_id)
    qtbot.waitUntil(lambda: any("follows it again" in w for w in rec2.warnings), timeout=30_000)
    assert remote_run(remote_env.db, exp_id)["pid"] == record["pid"]  # the same process, not a second one
    qtbot.waitUntil(lambda: bool(rec2.steps), timeout=30_000)
    controller2.stop(exp_id)
    finish(qtbot, controller2, rec2, timeout=60_000)
    assert rec2.result == ("stopped", None)
    assert_history_is_the_hosts(remote_env, exp_id)


def _recover_knows_remote_runs() -> bool:
    import inspect

    from rave_gui.backend.training import TrainingManager
    return "remote_pid" in inspect.getsource(TrainingManager.recover_runs)


@pytest.mark.skipif(not _recover_knows_remote_runs(),
                    reason="needs the training.py part of the remote-machines integration (recover_runs)")
def test_app_restart_reattaches_a_remote_run(remote_env, set_pace, qtbot):
    """After a restart, ``reattach_all`` (``recover_runs``) follows a run still training
    on its host (pid + start time checked there), instead of marking it interrupted."""
    set_pace(0.05)
    manager = remote_env.manager
    exp_id = manager.start_training(remote_env.config(name="restart", max_steps=60))
    earlier = RemoteTrainingProcess(manager, exp_id)
    earlier.prepare()
    earlier._launch()
    manager.set_status(exp_id, "running")
    controller = RunController(manager)
    rec = Recorder(controller, exp_id)
    attached, interrupted = controller.reattach_all()
    assert attached == [exp_id] and interrupted == []
    finish(qtbot, controller, rec)
    assert rec.result == ("completed", None)
    assert_history_is_the_hosts(remote_env, exp_id)


def test_abandon_stops_following_and_leaves_the_host_alone(remote_env, set_pace, qtbot):
    """What the controller does when a closing window's stop did not end in time."""
    set_pace(0.1)
    controller, exp_id, rec = start(remote_env, name="abandoned", max_steps=500)
    qtbot.waitUntil(lambda: bool(rec.steps) and rec.steps[-1] >= 3, timeout=60_000)
    controller.live_run(exp_id).process.abandon()
    finish(qtbot, controller, rec, timeout=30_000)
    assert rec.result[0] == "interrupted"
    alive = [p for p in _host_processes(remote_env, exp_id) if p.status() != "zombie"]
    assert alive  # it goes on there
    os.killpg(remote_run(remote_env.db, exp_id)["pgid"], signal.SIGKILL)


def test_unusable_work_folder_at_start_fails_with_a_sentence(remote_env, qtbot, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    remote_env.machines.update(remote_env.machine_id, work_dir=str(blocker / "work"))
    controller, exp_id, rec = start(remote_env, name="no room")
    finish(qtbot, controller, rec, timeout=60_000)
    status, error = rec.result
    assert status == "failed" and "cannot be used" in error and "Not a directory" in error
    assert remote_run(remote_env.db, exp_id) is None


def test_a_python_that_is_not_there_fails_with_the_hosts_words(remote_env, qtbot):
    remote_env.machines.update(remote_env.machine_id, python="/no/such dir/python")
    controller, exp_id, rec = start(remote_env, name="no python")
    finish(qtbot, controller, rec, timeout=60_000)
    status, error = rec.result
    assert status == "failed" and "/no/such dir/python was not found" in error and "Machines page" in error
    log = Path(remote_env.manager.get_experiment(exp_id)["log_path"]).read_text()
    assert "/no/such dir/python" in log and "not found" in log  # the host's own words, mirrored
