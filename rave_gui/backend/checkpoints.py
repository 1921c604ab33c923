"""A run's checkpoints: list them (step, validation loss, size, time), delete old ones.

RAVE saves ``best.ckpt`` (lowest validation) and ``epoch-epoch=NNNN.ckpt`` at
validation; the app's launcher adds ``stopped-step=N.ckpt`` when a person
stops a run, and notes each save in ``rave-gui-index.jsonl`` (step and
validation loss), so nothing here needs torch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from rave_gui.backend.events import version_dirs

INDEX = "rave-gui-index.jsonl"


def _index(folder: Path) -> dict[str, dict]:
    entries: dict[str, dict] = {}
    try:
        lines = (folder / INDEX).read_text().splitlines()
    except OSError:
        return entries
    for line in lines:
        try:
            record = json.loads(line)
            entries[record["file"]] = record  # later saves of the same file win
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def list_checkpoints(run_dir: str | Path | None) -> list[dict]:
    """Checkpoints of a run, oldest first. ``resume`` marks the one
    ``rave train --ckpt RUN`` would load (the newest file); ``best`` RAVE's
    best-validation checkpoint."""
    if run_dir is None:
        return []
    found = []
    for version in version_dirs(run_dir):
        folder = version / "checkpoints"
        index = _index(folder)
        for path in folder.glob("*.ckpt"):
            stat = path.stat()
            info = index.get(path.name, {})
            found.append({"path": str(path), "file": path.name, "version": version.name,
                          "step": info.get("step"), "validation": info.get("validation"),
                          "size": stat.st_size, "mtime": stat.st_mtime,
                          "best": path.name == "best.ckpt", "resume": False})
    found.sort(key=lambda c: c["mtime"])
    if found:
        found[-1]["resume"] = True
    return found


def delete_checkpoint(run_dir: str | Path, path: str | Path) -> None:
    """Delete one checkpoint file; refuses the one a resume needs."""
    path = Path(path)
    for ckpt in list_checkpoints(run_dir):
        if Path(ckpt["path"]) == path:
            if ckpt["resume"]:
                raise ValueError(f"{path.name} is the checkpoint a resume starts from; it cannot be deleted.")
            os.unlink(path)
            return
    raise ValueError(f"{path} is not a checkpoint of this run.")
