"""The models library: every ``.ts`` this app exported, plus ``.ts`` files imported
from disk, with where each came from and what its check found.

Plain Python over the ``exports`` table. ``MODELS_MIGRATION`` widens that table
into the library: an imported model has no run (``experiment_id`` NULL), a model
outlives the run it came from (``ON DELETE SET NULL``, the run's name is kept in
``run_name``), and each row carries its checkpoint (file, step, validation
loss), its display name and what ``model_check`` reported (latent size, sample
rate, channels, streaming, ``check_status``: unchecked / ok / broken, with a
sentence). SQLite cannot drop a NOT NULL or change a foreign key in place, so
the migration rebuilds the table (create, copy, drop, rename: SQLite's own
recipe); every existing column and row is kept, so ``ExportProcess`` and
``list_exports`` work unchanged.

Before the lead appends ``MODELS_MIGRATION`` to ``core.database.MIGRATIONS``,
tests call :func:`apply_models_migration`, which runs it on a ``Database``
whose ``exports`` table lacks the new columns (and does nothing once it has them).
"""
from __future__ import annotations

import os
from pathlib import Path

from rave_gui.core.database import MIGRATIONS
from rave_gui.core.timeutil import now

#: schema v6 (``core.database``): the SQL that widens ``exports`` into the library
MODELS_MIGRATION = MIGRATIONS[5]

#: what a row's ``status`` can be (``missing``: the file is no longer where it was)
STATUSES = ("ok", "broken", "unchecked", "missing")
MAX_NAME = 200


def apply_models_migration(db) -> bool:
    """Run ``MODELS_MIGRATION`` on ``db`` when its ``exports`` table lacks the library's
    columns (for tests, before the migration is in ``MIGRATIONS``). True if it ran."""
    columns = {row["name"] for row in db.query("PRAGMA table_info(exports)")}
    if "check_status" in columns:
        return False
    with db.transaction() as conn:
        for statement in (s.strip() for s in MODELS_MIGRATION.split(";")):
            if statement:
                conn.execute(statement)
    return True


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


class ModelLibrary:
    """The library's records. Every method answers with values or a ``ValueError``
    whose message is a sentence for the person."""

    def __init__(self, db):
        self.db = db

    # -- reading -------------------------------------------------------------------------
    def ids(self) -> list[int]:
        """Every model, newest first (the table model fetches rows by id, lazily)."""
        return [r[0] for r in self.db.query("SELECT id FROM exports ORDER BY created_at DESC, id DESC")]

    def get(self, model_id: int) -> dict | None:
        row = self.db.query_one(
            "SELECT e.*, x.name AS current_run_name FROM exports AS e "
            "LEFT JOIN experiments AS x ON x.id = e.experiment_id WHERE e.id = ?", (model_id,))
        return self._decorate(dict(row)) if row else None

    def rows(self) -> list[dict]:
        return [m for m in (self.get(i) for i in self.ids()) if m is not None]

    def unchecked_ids(self) -> list[int]:
        """Models never checked whose file is there (the page checks them, one at a time)."""
        rows = self.db.query("SELECT id, path FROM exports WHERE check_status = 'unchecked' ORDER BY id")
        return [r["id"] for r in rows if _size(Path(r["path"])) is not None]

    def find_by_path(self, path: str | Path) -> int | None:
        target = os.path.realpath(path)
        for row in self.db.query("SELECT id, path FROM exports"):
            if os.path.realpath(row["path"]) == target:
                return row["id"]
        return None

    @staticmethod
    def _decorate(model: dict) -> dict:
        path = Path(model["path"])
        size = _size(path)
        model["missing"] = size is None
        if size is not None:
            model["size_bytes"] = size
        model["display_name"] = model.get("name") or path.stem
        model["run_name"] = model.pop("current_run_name", None) or model.get("run_name")
        model["status"] = "missing" if model["missing"] else model.get("check_status") or "unchecked"
        return model

    # -- adding ----------------------------------------------------------------------------
    def import_file(self, path: str | Path) -> int:
        """Add a ``.ts`` from disk (unchecked until ``model_check`` has run on it)."""
        path = Path(path).expanduser()
        if path.suffix.lower() != ".ts":
            raise ValueError(f"{path.name} is not a .ts file: the library holds TorchScript models "
                             "exported by `rave export` (nn~, the RAVE VST and Neutone load .ts files).")
        size = _size(path)
        if size is None:
            raise ValueError(f"{path} does not exist or cannot be read; choose the .ts file again.")
        if size == 0:
            raise ValueError(f"{path.name} is empty (0 bytes): an export or a copy that did not finish. "
                             "Export or copy it again.")
        existing = self.find_by_path(path)
        if existing is not None:
            raise ValueError(f"{path.name} is already in the library as "
                             f"\u201c{self.get(existing)['display_name']}\u201d.")
        cursor = self.db.execute(
            "INSERT INTO exports (experiment_id, path, streaming, size_bytes, created_at, name, source)"
            " VALUES (NULL, ?, NULL, ?, ?, ?, 'import')",
            (str(path.resolve()), size, now(), path.stem))
        return int(cursor.lastrowid)

    def record_export(self, experiment: dict, path: str | Path, streaming: bool, fidelity: float,
                      checkpoint: dict | None = None) -> int:
        """Record a finished ``rave export`` of ``experiment`` (``checkpoint``: the
        entry of ``list_checkpoints`` it was exported from). Exporting to the same
        file again replaces that file's record (and clears its check)."""
        path = Path(path)
        checkpoint = checkpoint or {}
        step = checkpoint.get("step")
        if step is None and not checkpoint:
            step = experiment.get("current_step")
        values = (experiment["id"], str(path), int(bool(streaming)), float(fidelity), step, _size(path),
                  now(), experiment.get("name"), checkpoint.get("file"), checkpoint.get("validation"))
        with self.db.transaction():
            existing = self.find_by_path(path)
            if existing is None:
                cursor = self.db.execute(
                    "INSERT INTO exports (experiment_id, path, streaming, fidelity, step, size_bytes, created_at,"
                    " run_name, checkpoint, validation, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'export')",
                    values)
                return int(cursor.lastrowid)
            self.db.execute(
                "UPDATE exports SET experiment_id = ?, path = ?, streaming = ?, fidelity = ?, step = ?,"
                " size_bytes = ?, created_at = ?, run_name = ?, checkpoint = ?, validation = ?, source = 'export',"
                " check_status = 'unchecked', check_message = NULL, checked_at = NULL, latent_size = NULL,"
                " full_latent_size = NULL, sample_rate = NULL, channels = NULL WHERE id = ?",
                (*values, existing))
            return existing

    def record_check(self, model_id: int, result: dict) -> None:
        """Store what ``model_check`` reported (``ok``, ``message`` and the model's numbers)."""
        ok = bool(result.get("ok"))
        message = result.get("message") or ("" if ok else "The check failed without saying why.")
        streaming = result.get("streaming")
        self.db.execute(
            "UPDATE exports SET check_status = ?, check_message = ?, checked_at = ?,"
            " latent_size = coalesce(?, latent_size), full_latent_size = coalesce(?, full_latent_size),"
            " sample_rate = coalesce(?, sample_rate), channels = coalesce(?, channels),"
            " streaming = coalesce(?, streaming), size_bytes = coalesce(?, size_bytes) WHERE id = ?",
            ("ok" if ok else "broken", message, now(), _int(result.get("latent_size")),
             _int(result.get("full_latent_size")), _int(result.get("sample_rate")), _int(result.get("channels")),
             None if streaming is None else int(bool(streaming)), _int(result.get("size_bytes")), model_id))

    # -- changing --------------------------------------------------------------------------
    def rename(self, model_id: int, name: str, rename_file: bool = False) -> dict:
        """Give a model another name in the library; with ``rename_file`` the ``.ts``
        on disk is renamed too (``NAME.ts`` in the same folder). Returns the model."""
        model = self._require(model_id)
        name = " ".join(str(name).split())
        if not name:
            raise ValueError("A model needs a name: type at least one letter.")
        if len(name) > MAX_NAME:
            raise ValueError(f"That name is too long ({len(name)} characters, at most {MAX_NAME}).")
        path = Path(model["path"])
        if rename_file:
            if "/" in name or "\\" in name or name in (".", ".."):
                raise ValueError("A file name cannot contain / or \\; choose another name.")
            if model["missing"]:
                raise ValueError(f"The file {path} is missing, so it cannot be renamed; only the "
                                 "library's name can change.")
            target = path.with_name(name + ".ts")
            if target != path:
                if target.exists():
                    raise ValueError(f"{target.name} already exists in {path.parent}; choose another name.")
                try:
                    os.rename(path, target)
                except OSError as exc:
                    raise ValueError(f"{path.name} could not be renamed ({exc.strerror or exc}); check the "
                                     "folder's permissions.") from exc
                path = target
        self.db.execute("UPDATE exports SET name = ?, path = ? WHERE id = ?", (name, str(path), model_id))
        return self.get(model_id)

    def delete_question(self, model_id: int, delete_file: bool) -> str:
        """The sentence a person confirms before ``delete``."""
        model = self._require(model_id)
        name, path = model["display_name"], model["path"]
        if not delete_file:
            return (f"Remove \u201c{name}\u201d from the library? The file stays on disk ({path}); "
                    "you can import it again later.")
        if model["missing"]:
            return f"Remove \u201c{name}\u201d from the library? Its file is already gone ({path})."
        size = model.get("size_bytes") or 0
        return (f"Delete \u201c{name}\u201d and its file {path} ({size / 1e6:.1f} MB)? This cannot be "
                "undone: Max patches, Pd patches and DAW projects that load it will no longer find it.")

    def delete(self, model_id: int, delete_file: bool = False) -> None:
        """Remove the record, and with ``delete_file`` the ``.ts`` too (the file first:
        when it cannot be deleted the record stays, and the reason is raised)."""
        model = self._require(model_id)
        if delete_file:
            try:
                os.unlink(model["path"])
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise ValueError(f"{Path(model['path']).name} could not be deleted ({exc.strerror or exc}); "
                                 "it is still in the library. Check the folder's permissions.") from exc
        self.db.execute("DELETE FROM exports WHERE id = ?", (model_id,))

    def reveal_folder(self, model_id: int) -> Path:
        """The folder to open in the file manager: the model's, or (its file gone) the
        nearest folder above it that still exists."""
        folder = Path(self._require(model_id)["path"]).parent
        while not folder.is_dir() and folder.parent != folder:
            folder = folder.parent
        return folder

    def _require(self, model_id: int) -> dict:
        model = self.get(model_id)
        if model is None:
            raise ValueError("That model is no longer in the library.")
        return model


def _int(value) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
