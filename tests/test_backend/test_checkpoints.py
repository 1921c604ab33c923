"""Listing and deleting a run's checkpoints (files + the launcher's index)."""
from __future__ import annotations

import json
import os
import time

import pytest

from rave_gui.backend.checkpoints import delete_checkpoint, list_checkpoints


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run a_0123456789"
    v0 = run / "version_0" / "checkpoints"
    v1 = run / "version_1" / "checkpoints"
    v0.mkdir(parents=True)
    v1.mkdir(parents=True)
    now = time.time()
    for folder, name, age, size in ((v0, "epoch-epoch=0009.ckpt", 300, 10), (v0, "best.ckpt", 200, 20),
                                    (v1, "stopped-step=27.ckpt", 100, 30)):
        path = folder / name
        path.write_bytes(b"x" * size)
        os.utime(path, (now - age, now - age))
    (v0 / "rave-gui-index.jsonl").write_text(
        json.dumps({"file": "epoch-epoch=0009.ckpt", "step": 19, "validation": 9.5, "time": now}) + "\n"
        + "not json\n"
        + json.dumps({"file": "best.ckpt", "step": 19, "validation": 9.5, "time": now}) + "\n")
    (v1 / "rave-gui-index.jsonl").write_text(
        json.dumps({"file": "stopped-step=27.ckpt", "step": 27, "validation": None, "time": now}) + "\n")
    return run


def test_lists_every_version_oldest_first_with_steps_and_marks(run_dir):
    ckpts = list_checkpoints(run_dir)
    assert [(c["version"], c["file"]) for c in ckpts] == [
        ("version_0", "epoch-epoch=0009.ckpt"), ("version_0", "best.ckpt"), ("version_1", "stopped-step=27.ckpt")]
    assert [c["step"] for c in ckpts] == [19, 19, 27]
    assert [c["validation"] for c in ckpts] == [9.5, 9.5, None]
    assert [c["size"] for c in ckpts] == [10, 20, 30]
    assert [c["best"] for c in ckpts] == [False, True, False]
    assert [c["resume"] for c in ckpts] == [False, False, True]  # the newest: what --ckpt RUN loads


def test_no_run_no_checkpoints(tmp_path):
    assert list_checkpoints(None) == [] and list_checkpoints(tmp_path / "missing") == []


def test_delete_old_checkpoint_frees_it(run_dir):
    old = list_checkpoints(run_dir)[0]["path"]
    delete_checkpoint(run_dir, old)
    assert not os.path.exists(old)
    assert len(list_checkpoints(run_dir)) == 2


def test_the_checkpoint_a_resume_needs_cannot_be_deleted(run_dir):
    needed = list_checkpoints(run_dir)[-1]["path"]
    with pytest.raises(ValueError, match="resume starts from"):
        delete_checkpoint(run_dir, needed)
    assert os.path.exists(needed)


def test_only_this_runs_checkpoints_can_be_deleted(run_dir, tmp_path):
    stranger = tmp_path / "other.ckpt"
    stranger.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a checkpoint of this run"):
        delete_checkpoint(run_dir, stranger)
    assert stranger.exists()
