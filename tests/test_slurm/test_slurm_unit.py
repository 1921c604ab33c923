"""Slurm pieces that need no cluster: the settings, the batch script (run by a real
bash with a stand-in training), Slurm's answers, the partition check, the machine record."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from rave_gui.backend import slurm
from rave_gui.backend.machines import MachineManager, check_machine_device, is_slurm, remote_pid, save_remote_run
from rave_gui.core.database import Database

SETTINGS = {"partition": "debug", "time": "2", "margin": 60, "gpus": 0, "cpus": 1}


def test_time_formats():
    assert slurm.time_seconds("30") == 1800
    assert slurm.time_seconds("2:30") == 150
    assert slurm.time_seconds("1:00:00") == 3600
    assert slurm.time_seconds("2-00") == 2 * 86400
    assert slurm.time_seconds("1-02:03") == 86400 + 2 * 3600 + 180
    assert slurm.time_seconds("1-02:03:04") == 86400 + 2 * 3600 + 184
    assert slurm.time_seconds("soon") is None


@pytest.mark.parametrize("bad, words", [
    ({"partition": ""}, "partition"),
    ({"partition": "gpu; rm -rf ~"}, "not a Slurm name"),
    ({"partition": "gpu", "account": "a b"}, "not a Slurm name"),
    ({"partition": "gpu", "gpus": 99}, "GPUs per job"),
    ({"partition": "gpu", "cpus": 0}, "CPUs per job"),
    ({"partition": "gpu", "mem": "lots"}, "Memory per job"),
    ({"partition": "gpu", "time": "tomorrow"}, "time limit"),
    ({"partition": "gpu", "time": "2", "margin": 300}, "shorter than the time limit"),
    ({"partition": "gpu", "modules": "cuda; reboot"}, "Modules"),
    ({"partition": "gpu", "extra": "--qos=long"}, "#SBATCH"),
    ({"partition": "gpu", "export": "cloud"}, "login node"),
    ({"partition": "gpu", "colour": "red"}, "Unknown Slurm setting"),
])
def test_bad_settings_are_refused_with_a_sentence(bad, words):
    with pytest.raises(ValueError, match=words):
        slurm.clean_settings(bad)


def test_settings_are_cleaned():
    clean = slurm.clean_settings({"partition": " gpu ", "mem": "32g", "modules": "cuda/12.1, python/3.11",
                                  "extra": "#SBATCH --qos=long\n", "setup": "source ~/venv/bin/activate  \n"})
    assert clean["partition"] == "gpu" and clean["mem"] == "32G"
    assert clean["modules"] == ["cuda/12.1", "python/3.11"]
    assert clean["extra"] == "#SBATCH --qos=long" and clean["setup"] == "source ~/venv/bin/activate"
    assert clean["gpus"] == 1 and clean["time"] == "24:00:00" and clean["export"] == "login"


def test_directives_and_environment():
    settings = slurm.clean_settings({"partition": "gpu", "account": "lab", "gpus": 2, "mem": "16G",
                                     "modules": ["cuda/12.1"], "setup": "source ~/rave/bin/activate",
                                     "extra": "#SBATCH --qos=long"})
    script = slurm.batch_script(settings, "my run: é", "abc", ["~/rave/bin/python", "/w/l.py", "train"], {})
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    for wanted in ("#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --gres=gpu:2",
                   "#SBATCH --mem=16G", "#SBATCH --time=24:00:00", "#SBATCH --signal=B:USR1@300",
                   "#SBATCH --output=train.log", "#SBATCH --open-mode=append", "#SBATCH --qos=long",
                   "#SBATCH --comment=rave-gui-abc", "module load cuda/12.1", "source ~/rave/bin/activate"):
        assert wanted in lines, wanted
    name = next(line for line in lines if line.startswith("#SBATCH --job-name="))
    assert name == "#SBATCH --job-name=my_run"  # no space, colon or accent reaches the directive
    # every directive comes before the first command (sbatch stops reading them there)
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert all(not line.startswith("#SBATCH") for line in lines[first_command:])


def _stand_in(tmp_path):
    """A "training" that saves a checkpoint on SIGINT (as the launcher does) and
    exits 0, or exits 3 after 20 s; it writes ``started`` once its handler is set."""
    script = tmp_path / "train.py"
    script.write_text("import signal, sys, time\n"
                      "def stop(*_):\n"
                      "    print('checkpoint saved', flush=True); sys.exit(0)\n"
                      "signal.signal(signal.SIGINT, stop)\n"
                      "open('started', 'w').close()\n"
                      "time.sleep(20); sys.exit(3)\n")
    return script


def _run_batch(tmp_path, job_id: str, send):
    """Run the batch script as Slurm would (bash, SLURM_JOB_ID) and send ``send`` to
    the batch shell once the training runs, as ``--signal=B:...`` does."""
    settings = slurm.clean_settings(SETTINGS)
    script = slurm.batch_script(settings, "x", "tok", [sys.executable, str(_stand_in(tmp_path)), "train"],
                                {"A": "b c"})
    (tmp_path / "job.sh").write_text(script)
    proc = subprocess.Popen(["bash", "job.sh"], cwd=tmp_path, env=dict(os.environ, SLURM_JOB_ID=job_id),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(send)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def test_the_batch_shell_turns_the_time_limit_warning_into_a_stop_checkpoint(tmp_path):
    code, out = _run_batch(tmp_path, "41", signal.SIGUSR1)
    assert code == 0, out
    assert "checkpoint saved" in out and "[rave-gui:tok] time-limit" in out
    assert (tmp_path / "timelimit-41").exists()
    assert (tmp_path / "exitcode-41").read_text().strip() == "0"


def test_the_batch_shell_forwards_a_stop_and_writes_the_real_exit_code(tmp_path):
    code, out = _run_batch(tmp_path, "42", signal.SIGINT)
    assert code == 0 and "checkpoint saved" in out
    assert not (tmp_path / "timelimit-42").exists()
    assert (tmp_path / "exitcode-42").read_text().strip() == "0"


def test_parse_answers():
    assert slurm.parse_job_id("1234\n") == "1234"
    assert slurm.parse_job_id("77;cluster\n") == "77"
    assert slurm.parse_job_id("sbatch: error\n") is None
    state = slurm.parse_state("rave-gui-squeue=PENDING|Priority|\n")
    assert state.pending and state.reason == "Priority"
    state = slurm.parse_state("rave-gui-squeue=RUNNING|None|node1\n")
    assert state.running and state.node == "node1" and state.reason == ""
    state = slurm.parse_state("rave-gui-scontrol=JobId=5 JobName=x JobState=TIMEOUT Reason=TimeLimit "
                              "Dependency=(null) ExitCode=0:15 BatchHost=n1\n")
    assert state.ended and state.state == "TIMEOUT" and state.signal == 15 and state.node == "n1"
    state = slurm.parse_state("rave-gui-sacct=CANCELLED by 0|0:0|None\n")
    assert state.state == "CANCELLED" and state.ended
    assert slurm.parse_state("") is None
    refusal = slurm.submit_refusal("sbatch: error: invalid partition specified: nope\n"
                                   "sbatch: error: Batch job submission failed: Invalid partition name specified\n")
    assert refusal.startswith("Batch job submission failed: Invalid partition name specified")
    assert "nope" in refusal


def test_sentences_for_how_a_job_ended():
    settings = slurm.clean_settings({"partition": "gpu", "mem": "8G"})
    status, text = slurm.ended_sentence("9", slurm.JobState("OUT_OF_MEMORY"), settings)
    assert status == "failed" and "8G" in text and "batch size" in text
    assert "cancelled" in slurm.ended_sentence("9", slurm.JobState("CANCELLED"), settings)[1]
    assert slurm.ended_sentence("9", slurm.JobState("COMPLETED", exit_code=0), settings) is None
    assert "pending" in slurm.pending_note("9", slurm.JobState("PENDING", "Resources"))
    assert "free node" in slurm.pending_note("9", slurm.JobState("PENDING", "Resources"))


def test_partition_check():
    ok = slurm.partition_check("debug*|1|idle|2|7000|(null)|infinite\nrc=0\n", "debug")
    assert ok[0] == "ok" and ok[2]["nodes"] == 1 and "debug" in ok[1]
    down = slurm.partition_check("debug|1|down*|2|7000|gpu:a100:4|1-00:00:00\nrc=0\n", "debug")
    assert down[0] == "warning" and "gpu:a100:4" in down[1]
    missing = slurm.partition_check("rc=0\n", "nope")
    assert missing[0] == "error" and "sinfo -s" in missing[1]


def test_a_cluster_is_a_machine_with_slurm_settings(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    machines = MachineManager(db)
    plain = machines.add("box", "me@box")
    cluster = machines.add("hpc", "me@login", slurm={"partition": "gpu", "gpus": 2, "cpus": 16})
    assert not is_slurm(machines.get(plain)) and is_slurm(machines.get(cluster))
    assert machines.get(cluster)["gpus"] == ["GPU 0 of the job", "GPU 1 of the job"]
    assert machines.get(cluster)["cpus"] == 16
    assert check_machine_device(db, cluster, "gpu:1") == cluster
    with pytest.raises(ValueError, match="asks for 2 GPU"):
        check_machine_device(db, cluster, "gpu:2")
    with pytest.raises(ValueError, match="partition"):
        machines.add("bad", "me@login", slurm={"partition": ""})
    assert [m["name"] for m in machines.list()] == ["box", "hpc"]  # nothing written for the refused one
    machines.update(cluster, slurm={"time": "12:00:00"})
    assert machines.get(cluster)["slurm"]["time"] == "12:00:00"
    assert machines.get(cluster)["slurm"]["partition"] == "gpu"
    machines.update(cluster, slurm=None)
    assert not is_slurm(machines.get(cluster))


def test_a_job_id_is_what_a_cluster_run_reattaches_to(tmp_path):
    db = Database(tmp_path / "db.sqlite3")
    exp = db.execute("INSERT INTO experiments (name, status, config) VALUES ('x', 'running', '{}')").lastrowid
    save_remote_run(db, exp, out_dir="/w/runs/x", pid=4242)
    assert remote_pid(db, exp) == 4242
    save_remote_run(db, exp, job_id="977", pid=None)
    assert remote_pid(db, exp) == 977
