"""Fixtures for the tests that talk to a real single-node Slurm (and reach it through the loopback sshd)."""
from __future__ import annotations

from slurm_fixture import loopback_slurm  # noqa: F401 (fixture)
from sshd_fixture import loopback_sshd, trusted_sshd  # noqa: F401 (fixtures)
