"""The loopback Slurm harness itself (scripts/slurm_for_tests.py): the node is up,
batch jobs run, finish, are refused, signalled, held and cancelled, and the
cluster is reachable through the loopback sshd, as a remote machine would be."""
from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm


def job_fields(cluster, job_id: str) -> dict:
    """``scontrol show job`` as a dict (JobState, ExitCode, StdOut, ...)."""
    out = cluster.run("scontrol", "show", "job", "-o", job_id)
    assert out.returncode == 0, out.stderr
    return dict(item.split("=", 1) for item in out.stdout.split() if "=" in item)


def wait_state(cluster, job_id: str, states: set, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    fields = {}
    while time.monotonic() < deadline:
        fields = job_fields(cluster, job_id)
        if fields.get("JobState") in states:
            return fields
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not in {states} after {timeout:.0f} s: {fields.get('JobState')}\n"
                         f"{cluster.log_tail()}")


def wait_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path} was not written in {timeout:.0f} s")


def sbatch(cluster, script: Path, *options: str) -> str:
    out = cluster.run("sbatch", "--parsable", *options, str(script))
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip().split(";")[0]
    assert re.fullmatch(r"\d+", job_id), out.stdout
    return job_id


def test_sinfo_lists_the_idle_node(loopback_slurm):
    out = loopback_slurm.run("sinfo", "-h", "-N", "-o", "%P|%N|%T")
    assert out.returncode == 0, out.stderr
    assert f"{loopback_slurm.partition}*|{loopback_slurm.node}|idle" in out.stdout.splitlines()


def test_batch_job_completes_with_its_output(loopback_slurm, tmp_path):
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\necho \"hello from job $SLURM_JOB_ID\"\nexit 0\n")
    job_id = sbatch(loopback_slurm, script, "-D", str(tmp_path), "-o", str(tmp_path / "out-%j.txt"))
    fields = wait_state(loopback_slurm, job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"})
    assert fields["JobState"] == "COMPLETED"
    assert fields["ExitCode"] == "0:0"
    assert fields["Partition"] == loopback_slurm.partition
    assert (tmp_path / f"out-{job_id}.txt").read_text() == f"hello from job {job_id}\n"


def test_failed_job_reports_its_exit_code(loopback_slurm, tmp_path):
    script = tmp_path / "fail.sh"
    script.write_text("#!/bin/sh\nexit 7\n")
    job_id = sbatch(loopback_slurm, script, "-o", "/dev/null")
    fields = wait_state(loopback_slurm, job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"})
    assert fields["JobState"] == "FAILED"
    assert fields["ExitCode"] == "7:0"


def test_bad_partition_is_refused_with_the_reason(loopback_slurm, tmp_path):
    script = tmp_path / "never.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    out = loopback_slurm.run("sbatch", "--parsable", "-p", "no-such-partition", str(script))
    assert out.returncode != 0
    assert out.stdout.strip() == ""
    assert "invalid partition" in out.stderr.lower()


def test_scancel_signal_int_reaches_the_batch_shell(loopback_slurm, tmp_path):
    started, got = tmp_path / "started", tmp_path / "got-int"
    script = tmp_path / "trap.sh"
    script.write_text("#!/bin/bash\n"
                      f"trap 'echo INT > {shlex.quote(str(got))}; exit 130' INT\n"
                      f"echo up > {shlex.quote(str(started))}\n"
                      "while true; do sleep 0.2; done\n")
    job_id = sbatch(loopback_slurm, script, "-o", "/dev/null")
    wait_file(started)
    out = loopback_slurm.run("scancel", "--signal=INT", "--batch", job_id)
    assert out.returncode == 0, out.stderr
    assert wait_file(got) == "INT\n"
    fields = wait_state(loopback_slurm, job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"})
    assert fields["ExitCode"] == "130:0"


@pytest.mark.parametrize("option, reason", [("--hold", "JobHeldUser"), ("--begin=now+1hour", "BeginTime")])
def test_waiting_job_is_pending_with_a_reason(loopback_slurm, tmp_path, option, reason):
    script = tmp_path / "later.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    job_id = sbatch(loopback_slurm, script, option, "-o", "/dev/null")
    out = loopback_slurm.run("squeue", "-h", "-j", job_id, "-o", "%T|%r")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"PENDING|{reason}"
    assert loopback_slurm.run("scancel", job_id).returncode == 0
    assert wait_state(loopback_slurm, job_id, {"CANCELLED"})["JobState"] == "CANCELLED"


def test_shell_setup_is_all_a_shell_needs(loopback_slurm):
    env = {k: v for k, v in loopback_slurm.client_env().items() if k != "SLURM_CONF"}
    out = subprocess.run(["sh", "-c", f"{loopback_slurm.shell_setup()} && sinfo -h -o %P"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{loopback_slurm.partition}*"


def test_through_the_loopback_sshd(loopback_slurm, trusted_sshd, tmp_path):
    """A remote shell reaches the cluster after shell_setup(); the job runs as the ssh
    user and reads and writes folders the test made."""
    folder = tmp_path / "shared dir"
    folder.mkdir()
    (folder / "input.txt").write_text("from the test\n")
    script = folder / "job.sh"
    script.write_text("#!/bin/sh\n"
                      "cat input.txt > copied.txt\n"
                      "id -un > whoami.txt\n"
                      "echo done\n")

    local_env = {k: v for k, v in loopback_slurm.client_env().items() if k != "SLURM_CONF"}

    def ssh(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", "-F", str(trusted_sshd.client_config), trusted_sshd.alias, command],
                              capture_output=True, text=True, timeout=60, env=local_env)

    setup = loopback_slurm.shell_setup()
    out = ssh(f"{setup}; sinfo -h -o '%P %T'")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [f"{loopback_slurm.partition}*", "idle"]

    q = shlex.quote
    out = ssh(f"{setup}; cd {q(str(folder))} && sbatch --parsable -o {q(str(folder / 'out-%j.txt'))} job.sh")
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip()
    fields = wait_state(loopback_slurm, job_id, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"})
    assert fields["JobState"] == "COMPLETED", fields
    assert fields["UserId"].split("(")[0] == trusted_sshd.user
    assert (folder / "copied.txt").read_text() == "from the test\n"
    assert (folder / "whoami.txt").read_text().strip() == trusted_sshd.user
    assert (folder / f"out-{job_id}.txt").read_text() == "done\n"

    out = ssh(f"{setup}; scontrol show job {job_id} | grep -o 'JobState=[A-Z]*'")
    assert out.stdout.strip() == "JobState=COMPLETED", out.stderr
