"""TensorBoardService: a real ``tensorboard`` on 127.0.0.1, reused, restarted, stopped."""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from rave_gui.backend.tensorboard_service import (TensorBoardService, find_tensorboard,
                                                  logdir_spec, sanitize_name)

FIXTURE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "rave" / "smoke_run"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

needs_tensorboard = pytest.mark.skipif(find_tensorboard() is None, reason="tensorboard is not installed")


def get(url: str) -> tuple[int, bytes]:
    with NO_PROXY.open(url, timeout=10) as response:
        return response.status, response.read()


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    return [(c.laddr.ip, c.laddr.port) for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def served():
    """One real tensorboard for the module (it takes seconds to start)."""
    service = TensorBoardService()
    url = service.open({"smoke": FIXTURE_RUN})
    yield service, url
    service.stop()


# -- pure helpers ------------------------------------------------------------------

def test_sanitize_name_removes_what_logdir_spec_cannot_carry():
    assert sanitize_name("a:b,c") == "a_b_c"
    assert sanitize_name("/abs") == "abs"
    assert sanitize_name("  ") == "run"
    assert sanitize_name("my run (2)") == "my run (2)"


def test_logdir_spec_unique_names_and_absolute_dirs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    spec, key = logdir_spec({"x:1": tmp_path / "a", "x,1": tmp_path / "b"})
    assert spec == f"x_1:{tmp_path / 'a'},x_1 (2):{tmp_path / 'b'}"
    assert logdir_spec({"x_1 (2)": tmp_path / "b", "x_1": tmp_path / "a"})[1] == key


def test_logdir_spec_refuses_unusable_folders(tmp_path):
    with pytest.raises(ValueError, match="at least one run"):
        logdir_spec({})
    with pytest.raises(ValueError, match="does not exist"):
        logdir_spec({"gone": tmp_path / "missing"})
    comma = tmp_path / "a,b"
    comma.mkdir()
    with pytest.raises(ValueError, match="comma"):
        logdir_spec({"c": comma})


def test_missing_executable_is_a_sentence(tmp_path):
    service = TensorBoardService(executable=tmp_path / "no-such-tensorboard")
    with pytest.raises(ValueError, match=r"TensorBoard was not found at .*pip install tensorboard"):
        service.open({"smoke": FIXTURE_RUN})
    assert not service.running and service.url is None
    service.stop()


def test_missing_on_path_is_a_sentence(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ValueError, match="TensorBoard is not installed"):
        TensorBoardService().open({"smoke": FIXTURE_RUN})


def test_a_program_that_exits_at_once_gives_its_message(tmp_path):
    fake = tmp_path / "fake-tensorboard"
    fake.write_text(f"#!{sys.executable}\nimport sys\nprint('boom: bad flag')\nsys.exit(2)\n")
    fake.chmod(0o755)
    service = TensorBoardService(executable=fake, start_timeout=10)
    with pytest.raises(ValueError, match="TensorBoard did not start: boom: bad flag"):
        service.open({"smoke": FIXTURE_RUN})
    assert not service.running
    assert "boom" in service.output()


def test_a_silent_program_times_out_and_is_ended(tmp_path):
    fake = tmp_path / "sleepy-tensorboard"
    fake.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    fake.chmod(0o755)
    service = TensorBoardService(executable=fake, start_timeout=1, stop_timeout=2)
    with pytest.raises(ValueError, match="did not start within 1 s"):
        service.open({"smoke": FIXTURE_RUN})
    assert not service.running


# -- a real tensorboard ----------------------------------------------------------

@needs_tensorboard
def test_serves_the_run_on_localhost(served):
    service, url = served
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    assert service.running and service.url == url
    status, _ = get(url)
    assert status == 200
    runs = wait_for(lambda: json.loads(get(url + "data/runs")[1]))
    assert any(run.startswith("smoke") for run in runs), runs
    tags = wait_for(lambda: json.loads(get(url + "data/plugin/scalars/tags")[1]))
    assert any(run.startswith("smoke") for run in tags), tags


@needs_tensorboard
def test_listens_on_127_0_0_1_only(served):
    service, url = served
    addresses = wait_for(lambda: listening_addresses(service.pid), timeout=10)
    assert addresses, "tensorboard listens nowhere"
    assert {ip for ip, _ in addresses} == {"127.0.0.1"}, addresses
    assert port_of(url) in {port for _, port in addresses}


@needs_tensorboard
def test_same_runs_reuse_the_running_instance(served):
    service, url = served
    pid = service.pid
    assert service.open({"smoke": FIXTURE_RUN}) == url
    assert service.pid == pid


@needs_tensorboard
def test_other_runs_restart_it_and_stop_leaves_nothing(tmp_path):
    copy = tmp_path / "copy_run"
    shutil.copytree(FIXTURE_RUN, copy)
    service = TensorBoardService()
    try:
        first = service.open({"one": FIXTURE_RUN})
        first_pid = service.pid
        second = service.open({"one": FIXTURE_RUN, "two": copy})
        assert service.pid != first_pid
        assert not psutil.pid_exists(first_pid) or \
            psutil.Process(first_pid).status() == psutil.STATUS_ZOMBIE
        runs = wait_for(lambda: {r.split("/")[0] for r in json.loads(get(second + "data/runs")[1])}
                        >= {"one", "two"})
        assert runs
        pid, port = service.pid, port_of(second)
        assert not port_open(port_of(first)) or port_of(first) == port  # the old one is closed
    finally:
        service.stop()
    assert not service.running and service.url is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not [p for p in psutil.process_iter() if _in_group(p, pid)]
    assert not port_open(port)
    service.stop()  # idempotent


def _in_group(proc: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE
    except (OSError, psutil.Error):
        return False
