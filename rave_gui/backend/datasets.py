"""Datasets: preprocessed RAVE datasets (an LMDB folder with ``metadata.yaml``)."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import yaml

from rave_gui.core.database import Database


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

    def remove_dataset(self, dataset_id: int) -> None:
        """Forget a dataset (the files stay). Refused while experiments use it."""
        if self.get_dataset(dataset_id) is None:
            raise ValueError(f"There is no dataset {dataset_id}.")
        used = self.db.query_one(
            "SELECT count(*) AS n, sum(status = 'running') AS live FROM experiments WHERE dataset_id = ?",
            (dataset_id,))
        if used["n"]:
            raise ValueError(
                f"The dataset is used by {used['n']} experiment(s)"
                + (f", {used['live']} of them running" if used["live"] else "")
                + ". Delete those experiments first.")
        self.db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
