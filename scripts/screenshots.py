"""Screenshots of the real window during a real (CPU) training run.

Run through scripts/screenshots.sh (it starts Xvfb). Makes a tiny dataset
with the real `rave preprocess`, starts a real `rave train` run from the
page, waits for real loss points, and saves docs/screenshot-training.png,
docs/screenshot-wizard.png (the review page) and docs/screenshot-wizard-parameters.png.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from audio import make_audio_folder  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from rave_gui.backend import rave_cli  # noqa: E402
from rave_gui.backend.datasets import DatasetManager  # noqa: E402
from rave_gui.core.database import Database  # noqa: E402


def wait(app, predicate, timeout):
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.05)


def slurm_dialog_shot(app, window, out: Path) -> Path:
    """The Machines page's "Add Slurm cluster" dialog, filled in as a lab would."""
    dialog = window.machines_page.open_add_slurm_dialog()
    dialog.name_edit.setText("lab cluster")
    dialog.host_edit.setText("me@login.cluster.example")
    dialog.python_edit.setText("~/venvs/rave/bin/python")
    dialog.work_edit.setText("/scratch/me/rave-gui")
    box = dialog.slurm_box
    box.partition_edit.setText("gpu")
    box.account_edit.setText("my-lab")
    box.mem_edit.setText("32G")
    box.time_edit.setText("24:00:00")
    box.modules_edit.setText("cuda/12.1")
    box.setup_edit.setPlainText("source ~/venvs/rave/bin/activate")
    box.extra_edit.setPlainText("#SBATCH --qos=long")
    wait(app, lambda: False, 1)
    path = out / "screenshot-slurm.png"
    dialog.grab().save(str(path))
    dialog.reject()
    return path


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so `finally` stops the run
    app = QApplication(sys.argv[:1])
    from rave_gui.main_window import MainWindow
    work = Path(tempfile.mkdtemp(prefix="rave-gui-shots-"))
    audio = make_audio_folder(work / "audio", files=4, seconds=8)
    subprocess.run([str(rave_cli.find_rave()), "preprocess", "--input_path", str(audio), "--output_path",
                    str(work / "tones"), "--channels", "1"], check=True, capture_output=True)
    db = Database(work / "rave_gui.sqlite3")
    ds_id = DatasetManager(db).register(work / "tones", name="synthetic tones")
    window = MainWindow(db)
    window.resize(1400, 860)
    window.show()
    page = window.training_page
    wizard = page.open_new_training()
    wizard.select_dataset(ds_id)
    wizard.next()
    wizard.config_page.set_base_config("v2_small")
    wizard.next()
    wizard.parameters_page.name_edit.setText("tones v2_small")
    wizard.parameters_page.max_steps.setValue(300)
    wizard.parameters_page.batch_size.setValue(2)
    wizard.parameters_page.val_every.setValue(10)
    wizard.parameters_page.set_device("cpu")
    out = ROOT / "docs"
    out.mkdir(exist_ok=True)
    wait(app, lambda: False, 1)
    wizard.grab().save(str(out / "screenshot-wizard-parameters.png"))
    wizard.next()
    wait(app, lambda: False, 1)
    wizard.grab().save(str(out / "screenshot-wizard.png"))
    wizard.reject()
    slurm_dialog_shot(app, window, out)
    cfg = dict(wizard.get_config(), log_every=5)
    exp_id = page.start_run(cfg)
    page.tabs.setCurrentIndex(0)
    try:
        wait(app, lambda: (page.manager.get_experiment(exp_id)["current_step"] or 0) >= 45, 1800)
        wait(app, lambda: False, 2)
        window.grab().save(str(out / "screenshot-training.png"))
    finally:
        page.stop_all()  # the run has its own process group: never leave it behind
        db.close()
    print("saved", *(out / name for name in ("screenshot-training.png", "screenshot-wizard.png",
                                             "screenshot-wizard-parameters.png", "screenshot-slurm.png")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
