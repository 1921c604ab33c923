"""Datasets: preprocessed RAVE datasets (an LMDB folder with ``metadata.yaml``).

Register a folder ``rave preprocess`` wrote, or create one from folders of
audio (``create_from_audio`` checks the inputs, then returns the
:class:`PreprocessProcess` to start). Plain Python apart from that process.
"""
from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from rave_gui.backend.preprocess import check_preprocess_inputs
from rave_gui.backend.rave_cli import find_rave
from rave_gui.core.database import Database

if TYPE_CHECKING:
    from rave_gui.backend.preprocess_process import PreprocessProcess

DATASET_FILES = ("data.mdb", "lock.mdb", "metadata.yaml")
NAME_MAX = 64
_BAD_NAME_CHARS = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def read_metadata(path: str | Path) -> dict:
    """Read a RAVE dataset's ``metadata.yaml``; ``ValueError`` with a sentence if it isn't one."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ValueError(f"The dataset folder {folder} does not exist. Choose the folder "
                         "that `rave preprocess` wrote (it holds data.mdb and metadata.yaml).")
    meta_file = folder / "metadata.yaml"
    if not meta_file.is_file() or not (folder / "data.mdb").is_file():
        raise ValueError(f"{folder} is not a preprocessed RAVE dataset: it has no metadata.yaml "
                         "and data.mdb. Create the dataset from your audio folder first.")
    try:
        meta = yaml.safe_load(meta_file.read_text()) or {}
        channels = int(meta["channels"])
        sr = int(meta["sr"])
        seconds = float(meta.get("n_seconds") or 0.0)
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"The metadata.yaml in {folder} is unreadable ({exc}). "
                         "Preprocess the audio again.") from exc
    if channels < 1 or sr < 1:
        raise ValueError(f"The metadata.yaml in {folder} says {channels} channels at {sr} Hz. "
                         "Preprocess the audio again.")
    return {"channels": channels, "sample_rate": sr, "duration": seconds,
            "num_samples": int(round(sr * seconds)), "lazy": bool(meta.get("lazy", False))}


def validate_dataset_name(name: str) -> str:
    """The stripped name; ``ValueError`` with a sentence when it cannot name a folder."""
    name = (name or "").strip()
    if not name:
        raise ValueError("Give the dataset a name.")
    if len(name) > NAME_MAX:
        raise ValueError(f"The name is {len(name)} characters long: keep it under {NAME_MAX}.")
    if _BAD_NAME_CHARS.search(name) or name.startswith(".") or name.endswith("."):
        raise ValueError(f"\u201c{name}\u201d cannot name a folder: use letters, digits, spaces, "
                         "- and _ (no / \\ : * ? \" < > |, and no dot at the start or end).")
    return name


def count_examples(path: str | Path) -> int | None:
    """Entries in the dataset's LMDB (one per example), or None when it cannot be read."""
    try:
        import lmdb  # comes with acids-rave
        env = lmdb.open(str(path), readonly=True, lock=False, subdir=True, max_readers=1)
    except Exception:  # noqa: BLE001 - not installed, or not an LMDB
        return None
    try:
        return int(env.stat()["entries"])
    except Exception:  # noqa: BLE001
        return None
    finally:
        env.close()


class DatasetManager:
    def __init__(self, db: Database):
        self.db = db

    def register(self, path: str | Path, name: str | None = None, project_id: int | None = None) -> int:
        folder = Path(path).expanduser().resolve()
        meta = read_metadata(folder)
        if meta["num_samples"] <= 0:
            raise ValueError(f"The dataset in {folder} holds no audio (length 0). Check that the "
                             "audio folder had files ffmpeg can read, then preprocess again.")
        existing = self.db.query_one("SELECT id FROM datasets WHERE path = ?", (str(folder),))
        if existing:
            raise ValueError(f"{folder} is already registered as dataset {existing['id']}.")
        name = (name or folder.name).strip()
        if not name:
            raise ValueError("A dataset needs a name.")
        cur = self.db.execute(
            "INSERT INTO datasets (project_id, name, path, num_samples, channels, sample_rate, duration, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (project_id, name, str(folder), meta["num_samples"], meta["channels"],
             meta["sample_rate"], meta["duration"], now()),
        )
        return int(cur.lastrowid)

    def get_dataset(self, dataset_id: int) -> dict | None:
        row = self.db.query_one("SELECT * FROM datasets WHERE id = ?", (dataset_id,))
        return dict(row) if row else None

    def list_datasets(self, project_id: int | None = None) -> list[dict]:
        sql = ("SELECT d.*, (SELECT count(*) FROM experiments e WHERE e.dataset_id = d.id) AS used_by"
               " FROM datasets d")
        params: tuple = ()
        if project_id is not None:
            sql += " WHERE d.project_id = ?"
            params = (project_id,)
        return [dict(r) for r in self.db.query(sql + " ORDER BY d.id DESC", params)]

    def name_taken(self, name: str) -> bool:
        return self.db.query_one("SELECT 1 FROM datasets WHERE name = ?", (name.strip(),)) is not None

    def create_from_audio(self, audio_dirs, output_dir, name: str, channels: int = 1,
                          sample_rate: int = 44100, num_signal: int | None = None,
                          lazy: bool = False, log_path=None) -> "PreprocessProcess":
        """Check the inputs (``ValueError`` with a sentence) and return the
        ``rave preprocess`` thread; the caller starts it. On success it registers
        the dataset and emits ``dataset_created(id)`` and ``dataset_added(id)``."""
        name = validate_dataset_name(name)
        if self.name_taken(name):
            raise ValueError(f"A dataset named \u201c{name}\u201d exists already. Choose another name.")
        plan = check_preprocess_inputs(audio_dirs, output_dir, channels, sample_rate, num_signal, lazy)
        rave = find_rave()  # RaveNotFound carries its own sentence
        from rave_gui.backend.preprocess_process import PreprocessProcess
        return PreprocessProcess(plan, self, name, rave, log_path=log_path)

    def removal_blocker(self, dataset_id: int) -> str | None:
        """Why the dataset cannot be removed now (a sentence), or None."""
        used = self.db.query_one(
            "SELECT count(*) AS n, sum(status = 'running') AS live FROM experiments WHERE dataset_id = ?",
            (dataset_id,))
        if not used["n"]:
            return None
        return (f"The dataset is used by {used['n']} experiment(s)"
                + (f", {used['live']} of them running" if used["live"] else "")
                + ". Delete those experiments first.")

    def remove_dataset(self, dataset_id: int, delete_files: bool = False) -> None:
        """Forget a dataset; with ``delete_files`` also delete the files RAVE wrote
        (the folder goes when nothing else is in it). Refused while experiments use it."""
        dataset = self.get_dataset(dataset_id)
        if dataset is None:
            raise ValueError(f"There is no dataset {dataset_id}.")
        blocker = self.removal_blocker(dataset_id)
        if blocker:
            raise ValueError(blocker)
        self.db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        if delete_files:
            delete_dataset_files(dataset["path"])


def delete_dataset_files(path: str | Path) -> None:
    """Delete the files ``rave preprocess`` writes, and the folder if it is then empty.
    Anything else in the folder is left alone."""
    folder = Path(path)
    if not folder.is_dir():
        return
    try:
        for name in DATASET_FILES:
            (folder / name).unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()
    except OSError as exc:
        raise ValueError(f"The dataset was removed from the list, but its files in {folder} "
                         f"could not all be deleted ({exc.strerror or exc}). Delete them by hand.") from exc
