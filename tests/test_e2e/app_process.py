"""A headless stand-in for the app, run as a subprocess by the crash test:
it starts one real training run through the RunController, as the app does, then waits."""
from __future__ import annotations

import sys

from PyQt6.QtCore import QCoreApplication

from rave_gui.backend.runs import RunController
from rave_gui.backend.training import TrainingManager
from rave_gui.core.database import Database


def main(db_path: str, dataset_id: str, name: str, max_steps: str) -> int:
    app = QCoreApplication(sys.argv[:1])
    manager = TrainingManager(Database(db_path))
    exp_id = manager.start_training(dict(name=name, dataset_id=int(dataset_id), base_config="v2_small",
                                         max_steps=int(max_steps), batch_size=2, device="cpu",
                                         val_every=20, log_every=5))
    controller = RunController(manager)
    controller._launch(exp_id)
    controller.run_changed.connect(lambda e, what: what == "status" and not controller.is_live(e) and app.quit())
    print(f"experiment={exp_id}", flush=True)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:5]))
