"""The loopback single-node Slurm as a pytest fixture (``scripts/slurm_for_tests.py``).

Import the fixture into a test module or conftest (``from slurm_fixture import
loopback_slurm``). If the cluster cannot start, the test fails with the reason and
the daemons' logs: these tests must run wherever the suite runs (setup installs
slurmctld, slurmd, slurm-client and munge)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from slurm_for_tests import LoopbackSlurm, SlurmUnavailable  # noqa: E402


@pytest.fixture(scope="session")
def loopback_slurm(tmp_path_factory):
    """A real slurmctld + slurmd (+ its own munged) on 127.0.0.1, node idle,
    partition ``loopback_slurm.partition``. Clients need ``loopback_slurm.env()``
    (or a shell that ran ``loopback_slurm.shell_setup()``)."""
    cluster = LoopbackSlurm(tmp_path_factory.mktemp("slurm"), cpus=8)  # jobs of several tests never wait on 2 cores
    try:
        cluster.start()
    except SlurmUnavailable as exc:
        reason, tail = str(exc), cluster.log_tail()
        if tail and tail not in reason:
            reason += f"\n{tail}"
        pytest.fail(f"the loopback Slurm (scripts/slurm_for_tests.py) could not start: {reason}", pytrace=False)
    yield cluster
    cluster.stop()
