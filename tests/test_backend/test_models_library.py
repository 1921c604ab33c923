"""The models library (``backend/models.py``): the migration, import, rename,
delete (record / record and file), a file gone missing, exports and checks."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.models import MODELS_MIGRATION, ModelLibrary, apply_models_migration
from rave_gui.backend.training import TrainingManager
from rave_gui.core.database import Database


@pytest.fixture
def library(db) -> ModelLibrary:
    apply_models_migration(db)
    return ModelLibrary(db)


@pytest.fixture
def manager(db, tmp_path):
    return TrainingManager(db, runs_root=tmp_path / "runs", gpus=[])


@pytest.fixture
def experiment(manager, fake_dataset) -> dict:
    dataset_id = DatasetManager(manager.db).register(fake_dataset, name="voice")
    exp_id = manager.start_training({"name": "cello", "dataset_id": dataset_id, "max_steps": 60})
    manager.set_current_step(exp_id, 42)
    return manager.get_experiment(exp_id)


def ts_file(folder: Path, name: str = "model.ts", size: int = 1000) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


# -- the schema ------------------------------------------------------------------------------

@pytest.fixture
def before_models(monkeypatch):
    """``core.database`` as it is without the library's migration (whether or not the
    lead has appended it to MIGRATIONS yet)."""
    from rave_gui.core import database
    older = [m for m in database.MIGRATIONS if m.strip() != MODELS_MIGRATION.strip()]
    monkeypatch.setattr(database, "MIGRATIONS", older)
    monkeypatch.setattr(database, "SCHEMA_VERSION", len(older))
    return database


def test_the_migration_keeps_old_exports_and_lets_models_outlive_their_run(tmp_path, before_models):
    db = Database(tmp_path / "old.sqlite3")
    try:
        manager = TrainingManager(db, runs_root=tmp_path / "runs", gpus=[])
        db.execute("INSERT INTO experiments (name, status) VALUES ('cello', 'completed')")
        exp_id = db.query_one("SELECT id FROM experiments")[0]
        db.execute("INSERT INTO exports (experiment_id, path, streaming, fidelity, step, size_bytes, created_at)"
                   " VALUES (?, '/x/cello_streaming.ts', 1, 0.95, 42, 10, '2025-01-01T00:00:00')", (exp_id,))
        assert apply_models_migration(db) is True
        assert apply_models_migration(db) is False       # once only
        library = ModelLibrary(db)
        [model] = library.rows()
        assert (model["experiment_id"], model["run_name"], model["step"], model["fidelity"]) == (
            exp_id, "cello", 42, 0.95)
        assert model["source"] == "export" and model["check_status"] == "unchecked"
        manager.delete_experiment(exp_id)                 # ON DELETE SET NULL: the model stays
        [model] = library.rows()
        assert model["experiment_id"] is None and model["run_name"] == "cello"
    finally:
        db.close()


def test_the_migration_runs_as_a_numbered_step_of_the_database(tmp_path, before_models, monkeypatch):
    """What the lead's integration does: MIGRATIONS + [MODELS_MIGRATION]."""
    database = before_models
    monkeypatch.setattr(database, "MIGRATIONS", [*database.MIGRATIONS, MODELS_MIGRATION])
    monkeypatch.setattr(database, "SCHEMA_VERSION", len(database.MIGRATIONS))
    db = Database(tmp_path / "fresh.sqlite3")
    try:
        columns = {r["name"] for r in db.query("PRAGMA table_info(exports)")}
        assert {"name", "source", "checkpoint", "validation", "latent_size", "check_status"} <= columns
        assert db.schema_version == len(database.MIGRATIONS)
        assert apply_models_migration(db) is False
    finally:
        db.close()


# -- import ----------------------------------------------------------------------------------

def test_import_a_ts_from_disk(library, tmp_path):
    path = ts_file(tmp_path / "models", "flute.ts")
    model_id = library.import_file(path)
    model = library.get(model_id)
    assert model["display_name"] == "flute" and model["source"] == "import" and model["experiment_id"] is None
    assert model["status"] == "unchecked" and model["size_bytes"] == 1000 and model["streaming"] is None
    assert library.unchecked_ids() == [model_id]


@pytest.mark.parametrize("name, content, words", [
    ("notes.txt", b"x", "not a .ts file"),
    ("empty.ts", b"", "empty"),
])
def test_import_refuses_what_is_not_a_model(library, tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=words):
        library.import_file(path)
    assert library.ids() == []


def test_import_of_a_missing_file_or_the_same_file_twice(library, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        library.import_file(tmp_path / "gone.ts")
    path = ts_file(tmp_path)
    library.import_file(path)
    with pytest.raises(ValueError, match="already in the library"):
        library.import_file(tmp_path / "." / "model.ts")


# -- rename ----------------------------------------------------------------------------------

def test_rename_changes_the_library_name_only(library, tmp_path):
    path = ts_file(tmp_path)
    model_id = library.import_file(path)
    model = library.rename(model_id, "  Warm   cello ")
    assert model["display_name"] == "Warm cello" and Path(model["path"]) == path.resolve() and path.exists()


def test_rename_can_rename_the_file_too(library, tmp_path):
    path = ts_file(tmp_path)
    model_id = library.import_file(path)
    ts_file(tmp_path, "taken.ts")
    with pytest.raises(ValueError, match="already exists"):
        library.rename(model_id, "taken", rename_file=True)
    with pytest.raises(ValueError, match="cannot contain"):
        library.rename(model_id, "a/b", rename_file=True)
    model = library.rename(model_id, "cello v2", rename_file=True)
    assert Path(model["path"]).name == "cello v2.ts" and Path(model["path"]).is_file() and not path.exists()
    assert not model["missing"]


@pytest.mark.parametrize("name, words", [("   ", "needs a name"), ("x" * 201, "too long")])
def test_rename_refuses_empty_and_long_names(library, tmp_path, name, words):
    model_id = library.import_file(ts_file(tmp_path))
    with pytest.raises(ValueError, match=words):
        library.rename(model_id, name)


# -- delete ----------------------------------------------------------------------------------

def test_delete_the_record_keeps_the_file(library, tmp_path):
    path = ts_file(tmp_path)
    model_id = library.import_file(path)
    question = library.delete_question(model_id, delete_file=False)
    assert "stays on disk" in question and "model" in question
    library.delete(model_id)
    assert library.ids() == [] and path.exists()


def test_delete_the_record_and_the_file(library, tmp_path):
    path = ts_file(tmp_path)
    model_id = library.import_file(path)
    question = library.delete_question(model_id, delete_file=True)
    assert "cannot be undone" in question and str(path.resolve()) in question and "MB" in question
    library.delete(model_id, delete_file=True)
    assert library.ids() == [] and not path.exists()


def test_a_file_that_cannot_be_deleted_keeps_its_record(library, tmp_path):
    """The delete fails for real (even as root): the path became a folder with files in it."""
    folder = tmp_path / "locked"
    path = ts_file(folder)
    model_id = library.import_file(path)
    path.unlink()
    path.mkdir()
    (path / "inside").write_text("x")
    with pytest.raises(ValueError, match="could not be deleted"):
        library.delete(model_id, delete_file=True)
    assert library.get(model_id) is not None and path.is_dir()


def test_a_stale_file_is_shown_missing_and_can_still_be_removed(library, tmp_path):
    path = ts_file(tmp_path / "exports")
    model_id = library.import_file(path)
    path.unlink()
    model = library.get(model_id)
    assert model["missing"] and model["status"] == "missing"
    assert library.unchecked_ids() == []                    # nothing to check
    assert library.reveal_folder(model_id) == tmp_path / "exports"
    (tmp_path / "exports").rmdir()
    assert library.reveal_folder(model_id) == tmp_path      # the nearest folder that exists
    assert "already gone" in library.delete_question(model_id, delete_file=True)
    library.delete(model_id, delete_file=True)
    assert library.ids() == []


# -- exports and checks ------------------------------------------------------------------------

def test_an_export_records_its_checkpoint_and_a_re_export_replaces_it(library, experiment, tmp_path):
    path = ts_file(tmp_path / "export", "cello_best_streaming.ts")
    ckpt = {"file": "best.ckpt", "step": 39, "validation": 3.25, "path": "/run/version_0/checkpoints/best.ckpt"}
    model_id = library.record_export(experiment, path, True, 0.9, ckpt)
    model = library.get(model_id)
    assert (model["run_name"], model["checkpoint"], model["step"], model["validation"], model["streaming"],
            model["fidelity"], model["source"]) == ("cello", "best.ckpt", 39, 3.25, 1, 0.9, "export")
    library.record_check(model_id, {"ok": True, "message": "Works.", "latent_size": 8})
    again = library.record_export(experiment, path, True, 0.95, dict(ckpt, step=59))
    assert again == model_id and library.ids() == [model_id]
    model = library.get(model_id)
    assert model["step"] == 59 and model["check_status"] == "unchecked" and model["latent_size"] is None


def test_an_export_without_a_chosen_checkpoint_keeps_the_run_step(library, experiment, tmp_path):
    model_id = library.record_export(experiment, ts_file(tmp_path), False, 0.95)
    assert library.get(model_id)["step"] == 42 and library.get(model_id)["checkpoint"] is None


def test_a_check_stores_what_the_model_reports(library, tmp_path):
    model_id = library.import_file(ts_file(tmp_path))
    library.record_check(model_id, {"ok": True, "message": "Works: 8 latent dimensions.", "latent_size": 8,
                                    "full_latent_size": 128, "sample_rate": 44100, "channels": 1,
                                    "streaming": True})
    model = library.get(model_id)
    assert (model["status"], model["latent_size"], model["full_latent_size"], model["sample_rate"],
            model["channels"], model["streaming"]) == ("ok", 8, 128, 44100, 1, 1)
    assert model["checked_at"] and model["check_message"].startswith("Works")
    library.record_check(model_id, {"ok": False, "message": "torch.jit.load could not open it."})
    model = library.get(model_id)
    assert model["status"] == "broken" and model["latent_size"] == 8    # numbers from before are kept
    assert model["check_message"] == "torch.jit.load could not open it."
