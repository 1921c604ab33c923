"""Health rules: plain functions, each a sentence or None."""
from __future__ import annotations

import math

from rave_gui.backend import health


def test_nan_and_inf_terms_are_named():
    assert health.nan_alert({"step": 10, "loss": 1.0}) is None
    alert = health.nan_alert({"step": 1200, "loss": math.nan, "kl": math.inf, "ok": 1.0, "flag": True})
    assert "At step 1,200" in alert and "kl, loss" in alert and "diverged" in alert
    assert health.non_finite_terms({"step": 1, "a": -math.inf, "b": "nan"}) == ["a"]


def test_stall_after_the_limit_only():
    assert health.stall_alert(599, minutes=10) is None
    alert = health.stall_alert(660, minutes=10)
    assert "No step for 11 minutes" in alert and "Stop it" in alert


def test_disk_alert_compares_free_space_with_the_next_checkpoint(tmp_path):
    assert health.disk_alert(tmp_path, 1) is None
    alert = health.disk_alert(tmp_path / "not" / "yet", 10**16)  # 20 PB needed: never free
    assert "the next checkpoint needs about" in alert and "delete old checkpoints" in alert
    assert health.expected_checkpoint_bytes([{"size": 5}, {"size": 9}]) == 9
    assert health.expected_checkpoint_bytes([]) == health.DEFAULT_CHECKPOINT_BYTES


def test_out_of_memory_lines():
    assert "smaller batch size" in health.memory_alert("torch.OutOfMemoryError: CUDA out of memory. Tried")
    assert "computer ran out of memory" in health.memory_alert("RuntimeError: DefaultCPUAllocator: can't "
                                                               "allocate memory: you tried")
    assert health.memory_alert("Epoch 3: loss 0.2") is None
