"""A headless stand-in for the app, run as a subprocess by the crash test:
it starts one real training run the way the Training page does, then waits."""
from __future__ import annotations

import sys

from PyQt6.QtCore import QCoreApplication

from rave_gui.backend.training import TrainingManager, TrainingProcess
from rave_gui.core.database import Database


def main(db_path: str, dataset_id: str, name: str, max_steps: str) -> int:
    app = QCoreApplication(sys.argv[:1])
    manager = TrainingManager(Database(db_path))
    exp_id = manager.start_training(dict(name=name, dataset_id=int(dataset_id), base_config="v2_small",
                                         max_steps=int(max_steps), batch_size=2, device="cpu",
                                         val_every=20, log_every=5))
    process = TrainingProcess(manager, exp_id)
    manager.register_process(exp_id, process)
    process.finished.connect(lambda ok, msg: app.quit())
    process.start()
    print(f"experiment={exp_id}", flush=True)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:5]))
