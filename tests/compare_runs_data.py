"""Two stored runs for the Compare tests: a tmp database, a dataset, histories
and a RAVE ``config.gin`` per run folder."""
from __future__ import annotations

from pathlib import Path

from rave_gui.backend.datasets import DatasetManager
from rave_gui.backend.training import TrainingManager
from rave_gui.core.database import Database

GIN_A = """\
from __gin__ import dynamic_registration
import rave

# Macros:
# ==============================================================================
CAPACITY = 48
N_BAND = 16

# Parameters for discriminator.CombineDiscriminators:
discriminator.CombineDiscriminators.discriminators = \\
    [@discriminator.MultiPeriodDiscriminator,
     @discriminator.MultiScaleDiscriminator]
model.RAVE.phase_1_duration = %PHASE_1_DURATION  # a trailing comment
"""
GIN_B = GIN_A.replace("CAPACITY = 48", "CAPACITY = 64") + "model.RAVE.warmup = 1000\n"

# run A: val_loss best (0.5) at step 400; run B: best (0.3) at step 600
HISTORY_A = [{"step": 100, "loss": 2.0}, {"step": 200, "loss": 1.5, "val_loss": 0.9},
             {"step": 300, "loss": 1.2}, {"step": 400, "loss": 1.1, "val_loss": 0.5},
             {"step": 500, "loss": 1.3}, {"step": 600, "loss": 1.0, "val_loss": 0.7}]
HISTORY_B = [{"step": 100, "loss": 3.0}, {"step": 200, "loss": 2.5, "val_loss": 0.8},
             {"step": 400, "loss": 2.0, "val_loss": 0.6}, {"step": 600, "loss": 2.2, "val_loss": 0.3}]


def make_dataset(tmp_path: Path, db: Database) -> int:
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "metadata.yaml").write_text("channels: 1\nn_seconds: 30\nsr: 44100\n")
    (folder / "data.mdb").write_bytes(b"")
    return DatasetManager(db).register(folder)


def make_run(manager: TrainingManager, tmp_path: Path, dataset_id: int, name: str, history: list,
             gin: str | None, status: str = "completed", **config) -> int:
    exp_id = manager.start_training({"name": name, "dataset_id": dataset_id, **config})
    manager.set_status(exp_id, "running")
    manager.update_training_metrics(exp_id, history)
    if status != "running":
        manager.set_status(exp_id, status)
    run_dir = tmp_path / "rave_runs" / f"{name}_abc123"
    run_dir.mkdir(parents=True)
    if gin is not None:
        (run_dir / "config.gin").write_text(gin)
    manager.set_run_dir(exp_id, run_dir)
    return exp_id


def two_runs(tmp_path: Path, second_status: str = "completed"):
    """(db, manager, [id_a, id_b]): A (batch 8, 1000 steps) and B (batch 16, 800 steps)."""
    db = Database(tmp_path / "db.sqlite3")
    manager = TrainingManager(db, runs_root=tmp_path / "runs", gpus=[])
    dataset_id = make_dataset(tmp_path, db)
    a = make_run(manager, tmp_path, dataset_id, "run-a", HISTORY_A, GIN_A, max_steps=1000, batch_size=8)
    b = make_run(manager, tmp_path, dataset_id, "run-b", HISTORY_B, GIN_B, status=second_status,
                 max_steps=800, batch_size=16)
    return db, manager, [a, b]
