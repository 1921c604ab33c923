"""Datasets: preprocessed RAVE datasets (an LMDB folder with ``metadata.yaml``).

Register a folder ``rave preprocess`` wrote, or create one from folders of
audio (``create_from_audio`` checks the inputs, then returns the
:class:`PreprocessProcess` to start). Plain Python apart from that process.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rave_gui.backend.names import name_from_folder, validate_name
from rave_gui.backend.preprocess import check_preprocess_inputs
from rave_gui.backend.rave_cli import find_rave
from rave_gui.core.database import Database
from rave_gui.core.timeutil import now

if TYPE_CHECKING:
    from rave_gui.backend.preprocess_process import PreprocessProcess

DATASET_FILES = ("data.mdb", "lock.mdb", "metadata.yaml")
NAME_MAX = 64
METADATA_MAX_BYTES = 1 << 20   # RAVE writes a few lines
MAX_CHANNELS = 64
MAX_SAMPLE_RATE = 1_000_000
MAX_SECONDS = 10 * 365.25 * 24 * 3600  # ten years of audio
_REDO = "Preprocess the audio again."


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _in_range(value: Any, low: float, high: float, whole: bool) -> bool:
    """A real number (not a bool, not NaN or infinite) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return low <= value <= high and (not whole or value == int(value))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "\u2026"


def _whole_number(meta: dict, key: str, high: int, unit: str, folder: Path) -> int:
    value = meta.get(key)
    if value is None:
        raise ValueError(f"The metadata.yaml in {folder} has no {key} value. {_REDO}")
    if not _in_range(value, 1, high, whole=True):
        raise ValueError(f"The metadata.yaml in {folder} says {key}: {_shown(value)}, but it must be "
                         f"a whole number of {unit} from 1 to {high:,}. {_REDO}")
    return int(value)


def _read_metadata_text(folder: Path) -> str:
    meta_file = folder / "metadata.yaml"
    try:
        if not folder.is_dir():
            raise ValueError(f"The dataset folder {folder} does not exist. Choose the folder "
                             "that `rave preprocess` wrote (it holds data.mdb and metadata.yaml).")
        if not meta_file.is_file() or not (folder / "data.mdb").is_file():
            raise ValueError(f"{folder} is not a preprocessed RAVE dataset: it has no metadata.yaml "
                             "and data.mdb. Create the dataset from your audio folder first.")
        size = meta_file.stat().st_size
        if size > METADATA_MAX_BYTES:
            raise ValueError(f"The metadata.yaml in {folder} is {size:,} bytes, far more than RAVE "
                             f"writes. {_REDO}")
        return meta_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"The dataset folder {folder} cannot be read ({_reason(exc)}). Check that "
                         "it exists and that you may read it, then try again.") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"The metadata.yaml in {folder} is not text ({exc.reason}). {_REDO}") from exc


def read_metadata(path: str | Path) -> dict:
    """Read a RAVE dataset's ``metadata.yaml``; ``ValueError`` with a sentence if it isn't one.

    Every value is checked: channels a whole number from 1 to 64, ``sr`` one from 1
    to 1,000,000 Hz, ``n_seconds`` (missing means 0) a finite length up to ten years."""
    try:
        folder = Path(path).expanduser()
    except (RuntimeError, ValueError) as exc:  # no home folder for "~"
        raise ValueError(f"The dataset folder {path} cannot be used ({_reason(exc)}). Choose "
                         "the folder that `rave preprocess` wrote.") from exc
    return parse_metadata_text(_read_metadata_text(folder), folder)


def parse_metadata_text(text: str, folder: str | Path) -> dict:
    """Check the text of a ``metadata.yaml`` (``folder`` names it in the sentences:
    a local folder, or ``host:path`` for a dataset on another machine)."""
    try:
        meta = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(f"The metadata.yaml in {folder} is unreadable ({detail}). {_REDO}") from exc
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ValueError(f"The metadata.yaml in {folder} holds a {type(meta).__name__}, not the "
                         f"settings RAVE writes (channels, sr, n_seconds). {_REDO}")
    channels = _whole_number(meta, "channels", MAX_CHANNELS, "channels", folder)
    sr = _whole_number(meta, "sr", MAX_SAMPLE_RATE, "samples per second", folder)
    seconds = meta.get("n_seconds")
    if seconds is None:
        seconds = 0.0
    elif not _in_range(seconds, 0, MAX_SECONDS, whole=False):
        raise ValueError(f"The metadata.yaml in {folder} says n_seconds: {_shown(seconds)}, but it "
                         f"must be a length in seconds from 0 to {MAX_SECONDS:,.0f}. {_REDO}")
    lazy = meta.get("lazy")
    if lazy is not None and not isinstance(lazy, bool):
        raise ValueError(f"The metadata.yaml in {folder} says lazy: {_shown(lazy)}, but it must be "
                         f"true or false. {_REDO}")
    return {"channels": channels, "sample_rate": sr, "duration": float(seconds),
            "num_samples": int(round(sr * float(seconds))), "lazy": bool(lazy)}


def validate_dataset_name(name: Any) -> str:
    """The stripped name; ``ValueError`` with a sentence when it cannot name a folder
    (the rule of :func:`rave_gui.backend.names.validate_name`, at most 64 characters)."""
    return validate_name(name, "dataset", NAME_MAX)


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
        """Add a folder ``rave preprocess`` wrote; its id. ``name`` (checked by the name
        rule) defaults to one made from the folder's name. ``ValueError`` with a
        sentence, and nothing written, when the folder or the name will not do."""
        if name is not None:
            name = validate_dataset_name(name)
        try:
            folder = Path(path).expanduser().resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
            raise ValueError(f"The dataset folder {path} cannot be used ({_reason(exc)}). Choose "
                             "the folder that `rave preprocess` wrote.") from exc
        meta = read_metadata(folder)
        if meta["num_samples"] <= 0:
            raise ValueError(f"The dataset in {folder} holds no audio (length 0). Check that the "
                             "audio folder had files ffmpeg can read, then preprocess again.")
        existing = self.db.query_one("SELECT id FROM datasets WHERE path = ?", (str(folder),))
        if existing:
            raise ValueError(f"{folder} is already registered as dataset {existing['id']}.")
        if name is None:
            name = name_from_folder(folder.name, "dataset", NAME_MAX)
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
    try:
        if not folder.is_dir():
            return
        for name in DATASET_FILES:
            (folder / name).unlink(missing_ok=True)
        if not any(folder.iterdir()):
            folder.rmdir()
    except OSError as exc:
        raise ValueError(f"The dataset was removed from the list, but its files in {folder} "
                         f"could not all be deleted ({exc.strerror or exc}). Delete them by hand.") from exc
