"""A run's checkpoints: list them (step, validation loss, size, time), delete old ones.

RAVE saves ``best.ckpt`` (lowest validation) and ``epoch-epoch=NNNN.ckpt`` at
validation; the app's launcher adds ``stopped-step=N.ckpt`` when a person
stops a run, and notes each save in ``rave-gui-index.jsonl`` (step and
validation loss), so nothing here needs torch.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from rave_gui.backend.events import version_dirs

INDEX = "rave-gui-index.jsonl"
#: in the local mirror of a run on another machine: the host's checkpoint files
#: ({file: [size, mtime]}), written by ``remote_process`` (the .ckpt files stay there)
REMOTE_LISTING = "rave-gui-remote.json"


def _step(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _loss(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return value if math.isfinite(value) else None


def _index(folder: Path) -> dict[str, dict]:
    """The launcher's notes on each checkpoint file; lines that are not such a note
    (a damaged or hand-edited file) are skipped, and odd values become None."""
    entries: dict[str, dict] = {}
    try:
        lines = (folder / INDEX).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return entries
    for line in lines:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict) and isinstance(record.get("file"), str):
            # later saves of the same file win
            entries[record["file"]] = {"step": _step(record.get("step")),
                                       "validation": _loss(record.get("validation"))}
    return entries


def list_checkpoints(run_dir: str | Path | None) -> list[dict]:
    """Checkpoints of a run, oldest first. ``resume`` marks the one
    ``rave train --ckpt RUN`` would load (the newest file); ``best`` RAVE's
    best-validation checkpoint. A file deleted while the folder is read is left out."""
    if run_dir is None:
        return []
    found = []
    for version in version_dirs(run_dir):
        folder = version / "checkpoints"
        index = _index(folder)
        for path in folder.glob("*.ckpt"):
            try:
                stat = path.stat()
            except OSError:  # gone between the listing and now (RAVE replaces best.ckpt)
                continue
            info = index.get(path.name, {})
            found.append({"path": str(path), "file": path.name, "version": version.name,
                          "step": info.get("step"), "validation": info.get("validation"),
                          "size": stat.st_size, "mtime": stat.st_mtime,
                          "best": path.name == "best.ckpt", "resume": False})
        found += _remote_only(folder, version, index, {c["file"] for c in found if c["version"] == version.name})
    found.sort(key=lambda c: c["mtime"])
    if found:
        found[-1]["resume"] = True
    return found


def _remote_only(folder: Path, version: Path, index: dict, local: set[str]) -> list[dict]:
    """Checkpoints that live on the host of a remote run (its mirror has only the
    index): one entry per file the host listed, marked ``remote``."""
    try:
        listing = json.loads((folder / REMOTE_LISTING).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(listing, dict):
        return []
    entries = []
    for name, info in listing.items():
        if not isinstance(name, str) or name in local or not name.endswith(".ckpt") or "/" in name \
                or not isinstance(info, list) or len(info) != 2:
            continue
        size, mtime = _step(info[0]), _loss(info[1])
        if size is None or mtime is None:
            continue
        meta = index.get(name, {})
        entries.append({"path": str(folder / name), "file": name, "version": version.name,
                        "step": meta.get("step"), "validation": meta.get("validation"),
                        "size": size, "mtime": mtime, "best": name == "best.ckpt", "resume": False,
                        "remote": True})
    return entries


def delete_checkpoint(run_dir: str | Path, path: str | Path) -> None:
    """Delete one checkpoint file; refuses the one a resume needs."""
    path = Path(path)
    for ckpt in list_checkpoints(run_dir):
        if Path(ckpt["path"]) == path:
            if ckpt["resume"]:
                raise ValueError(f"{path.name} is the checkpoint a resume starts from; it cannot be deleted.")
            if ckpt.get("remote"):
                raise ValueError(f"{path.name} is on the machine this run trained on, not on this computer; "
                                 "delete it there.")
            try:
                os.unlink(path)
            except FileNotFoundError:
                return  # already gone: what was asked
            except OSError as exc:
                raise ValueError(f"{path.name} could not be deleted ({exc.strerror or exc}). "
                                 "Check the folder's permissions, then try again.") from exc
            return
    raise ValueError(f"{path} is not a checkpoint of this run.")
