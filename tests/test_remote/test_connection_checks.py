""""Test connection" against a real OpenSSH server on 127.0.0.1: every check, each
failure a sentence, the unknown host key shown with its fingerprint and accepted
into the known_hosts file ssh uses for the target (never ~/.ssh)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from sshd_fixture import remove_control_dir

from rave_gui.backend import connection_check
from rave_gui.backend.machines import MachineManager
from rave_gui.backend.ssh import accept_host_key

pytestmark = pytest.mark.ssh


@pytest.fixture
def machines(db):
    manager = MachineManager(db)
    yield manager
    for machine in manager.list():
        manager.target(machine).close_master()
    remove_control_dir(manager.data_dir)


def by_name(checks) -> dict:
    return {c.name: c for c in checks}


def home_ssh_state():
    folder = Path.home() / ".ssh"
    return sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) if folder.is_dir() else None


def add(machines, server, alias=None, python=sys.executable, work_dir=None):
    return machines.add(f"m{len(machines.list())}", alias or server.alias, python=python,
                        work_dir=str(work_dir or server.work_dir), ssh_config=str(server.client_config))


def test_unknown_host_key_is_shown_then_accepted(loopback_sshd, machines):
    before = home_ssh_state()
    loopback_sshd.known_hosts.write_text("")
    machine_id = add(machines, loopback_sshd)
    checks = machines.test(machine_id)
    assert [c.name for c in checks] == ["reachable", "host key"]
    key_check = checks[-1]
    assert key_check.status == "error" and "not known yet" in key_check.message
    assert loopback_sshd.host_fingerprint() in key_check.message          # the real key's fingerprint
    key = key_check.data["host_key"]
    assert key.known_hosts == loopback_sshd.known_hosts                  # the file ssh uses for it
    accept_host_key(key)
    assert f"[127.0.0.1]:{loopback_sshd.port} ssh-ed25519 " in loopback_sshd.known_hosts.read_text()

    checks = by_name(machines.test(machine_id))
    assert [c.status for c in checks.values()] == ["ok"] * 6 + ["warning"]
    assert checks["rave"].data["rave_version"] == "2.3.1" and "rave 2.3.1" in checks["rave"].message
    assert "no NVIDIA GPU" in checks["gpus"].message
    assert checks["work folder"].data["path"] == str(loopback_sshd.work_dir) and "free" in checks["work folder"].message
    stored = machines.get(machine_id)
    assert stored["gpus"] == [] and stored["cpus"] >= 1 and stored["checked_at"]
    assert home_ssh_state() == before                                    # ~/.ssh untouched


def test_changed_host_key_is_refused_with_a_warning(trusted_sshd, machines, tmp_path):
    other = tmp_path / "other_key"
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    pub = (tmp_path / "other_key.pub").read_text().split()
    trusted_sshd.known_hosts.write_text(f"[127.0.0.1]:{trusted_sshd.port} {pub[0]} {pub[1]}\n")
    try:
        checks = machines.test(add(machines, trusted_sshd))
        assert checks[-1].name == "host key" and "CHANGED" in checks[-1].message
        assert "host_key" not in checks[-1].data  # nothing to accept with one click
    finally:
        trusted_sshd.trust_host_key()


def test_refused_key(trusted_sshd, machines):
    checks = machines.test(add(machines, trusted_sshd, alias=f"{trusted_sshd.alias}-badkey"))
    assert [c.status for c in checks] == ["ok", "ok", "error"]
    assert checks[-1].name == "login" and "refused the login" in checks[-1].message
    assert "ssh-copy-id" in checks[-1].message and "never asks for passwords" in checks[-1].message


def test_unreachable_port(trusted_sshd, machines):
    checks = machines.test(add(machines, trusted_sshd, alias=f"{trusted_sshd.alias}-closed"))
    assert len(checks) == 1 and checks[0].name == "reachable" and checks[0].status == "error"
    assert "Nothing answers" in checks[0].message and "connection refused" in checks[0].message


def test_host_without_that_python(trusted_sshd, machines):
    checks = by_name(machines.test(add(machines, trusted_sshd, python="/opt/no such/python3")))
    assert checks["rave"].status == "error"
    assert "'/opt/no such/python3' does not run" in checks["rave"].message and "not found" in checks["rave"].message


def test_host_whose_python_has_no_rave(trusted_sshd, machines, tmp_path):
    bare = tmp_path / "bare venv"
    import subprocess
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    checks = by_name(machines.test(add(machines, trusted_sshd, python=str(bare / "bin" / "python"))))
    assert checks["rave"].status == "error" and "has no acids-rave" in checks["rave"].message
    assert "pip install acids-rave==2.3.1" in checks["rave"].message


def test_work_folder_that_cannot_be_created(trusted_sshd, machines, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    checks = by_name(machines.test(add(machines, trusted_sshd, work_dir=blocker / "work")))
    work = checks["work folder"]
    assert work.status == "error" and "cannot be created" in work.message and "Not a directory" in work.message
    assert checks["rave"].status == "ok"  # the other checks still report


def test_full_disk_simulated(trusted_sshd, machines):
    machine_id = add(machines, trusted_sshd)
    checks = by_name(machines.test(machine_id, min_free_bytes=1 << 60))
    work = checks["work folder"]
    assert work.status == "error" and work.message.startswith("Only ") and "Free some space" in work.message


def test_problems_lists_the_sentences(trusted_sshd, machines):
    checks = machines.test(add(machines, trusted_sshd, python="/nope"))
    assert connection_check.problems(checks) == [c.message for c in checks if c.status == "error"]
    assert len(connection_check.problems(checks)) == 1


def test_register_a_dataset_that_lives_on_the_host(trusted_sshd, machines, db, fake_dataset, tmp_path):
    machine_id = add(machines, trusted_sshd)
    on_host = trusted_sshd.work_dir / "their data 'x'"
    shutil.copytree(fake_dataset, on_host)
    ds_id = machines.register_remote_dataset(machine_id, str(on_host))
    row = db.query_one("SELECT * FROM datasets WHERE id = ?", (ds_id,))
    assert row["machine_id"] == machine_id and row["path"] == str(on_host) and row["channels"] == 1
    assert row["sample_rate"] == 44100
    with pytest.raises(ValueError, match="already registered"):
        machines.register_remote_dataset(machine_id, str(on_host))
    with pytest.raises(ValueError, match="not a preprocessed RAVE dataset"):
        machines.register_remote_dataset(machine_id, str(tmp_path))
    assert machines.removal_blocker(machine_id) and "registered by their path" in machines.removal_blocker(machine_id)
