"""The loopback OpenSSH server as pytest fixtures (``scripts/sshd_for_tests.py``).

Import the fixtures into a test module or conftest (``from sshd_fixture import
loopback_sshd``). If the server cannot start, the test fails with the reason:
these tests must run wherever the suite runs (setup installs openssh-server,
openssh-client and rsync)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from sshd_for_tests import LoopbackSSHD, SSHDUnavailable  # noqa: E402


@pytest.fixture(scope="session")
def loopback_sshd(tmp_path_factory):
    """A real sshd on 127.0.0.1 (its host key not yet known to the client)."""
    server = LoopbackSSHD(tmp_path_factory.mktemp("sshd"))
    try:
        server.start()
    except SSHDUnavailable as exc:
        pytest.fail(f"the loopback sshd (scripts/sshd_for_tests.py) could not start: {exc}")
    yield server
    server.stop()


@pytest.fixture
def trusted_sshd(loopback_sshd):
    """The server with its host key already accepted."""
    loopback_sshd.trust_host_key()
    yield loopback_sshd


def remove_control_dir(data_dir) -> None:
    """Remove the app's folder for master sockets when it is the short one in /tmp
    (a test's data folder is too long for a socket path): tests leave nothing behind.
    Close the master connections first."""
    import shutil

    from rave_gui.backend.ssh import control_dir
    folder = control_dir(data_dir)
    if folder.parent != Path(data_dir):
        shutil.rmtree(folder, ignore_errors=True)
