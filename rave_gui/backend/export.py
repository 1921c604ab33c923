"""Export a trained run for nn~ / the RAVE VST with the real ``rave export``."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import pyqtSignal

from rave_gui.backend import rave_cli
from rave_gui.backend.checkpoints import list_checkpoints
from rave_gui.backend.log_parsing import explain_failure
from rave_gui.backend.run_paths import RunPaths
from rave_gui.backend.run_state import LIVE
from rave_gui.core.process import ProcessThread
from rave_gui.core.timeutil import now

_STEPS = ("model found", "script model", "save model", "all good")


def export_name(experiment_name: str, streaming: bool) -> str:
    return f"{experiment_name}{'_streaming' if streaming else ''}.ts"


class ExportProcess(ProcessThread):
    """Runs ``rave export --run RUN [--streaming] --fidelity F --output DIR``;
    on success records the file in the ``exports`` table and emits
    ``exported(path)``."""

    exported = pyqtSignal(str)

    def __init__(self, manager, experiment_id: int, output_dir: str | Path | None = None,
                 streaming: bool = True, fidelity: float = 0.95, parent=None):
        exp = manager.get_experiment(experiment_id)
        if exp is None:
            raise ValueError(f"There is no experiment {experiment_id}.")
        self.paths = RunPaths.of(exp)
        super().__init__(log_path=self.paths.export_log, parent=parent)
        self.manager = manager
        self.experiment = exp
        self.output_dir = Path(output_dir) if output_dir else self.paths.export_dir
        self.streaming = streaming
        self.fidelity = float(fidelity)
        self.path = self.output_dir / export_name(exp["name"], streaming)

    def prepare(self) -> None:
        if not 0.1 <= self.fidelity <= 0.999:
            raise ValueError("Fidelity must be between 0.1 and 0.999 (RAVE's limits).")
        self.rave = rave_cli.find_rave()
        self.run_dir = self.paths.run_dir
        if self.run_dir is None or not list_checkpoints(self.run_dir):
            raise ValueError("This run has no checkpoint to export yet: RAVE saves one at each "
                             "validation (or when the app stops the run).")
        if self.experiment["status"] in LIVE:
            raise ValueError("Stop the run (or let it finish) before exporting it.")
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"The export folder {self.output_dir} cannot be created "
                             f"({exc.strerror or exc}). Choose another folder.")

    def build_command(self) -> list[str]:
        argv = [str(self.rave), "export", "--run", str(self.run_dir), "--name", self.experiment["name"],
                "--output", str(self.output_dir), "--fidelity", str(self.fidelity)]
        argv.append("--streaming" if self.streaming else "--nostreaming")
        return argv

    def handle_line(self, line: str) -> None:
        for number, marker in enumerate(_STEPS, start=1):
            if marker in line:
                self.progress.emit(int(100 * number / len(_STEPS)), marker)

    def outcome(self, returncode: int) -> tuple[bool, str]:
        if self.stop_requested:
            return False, "Export cancelled."
        if returncode != 0 or not self.path.is_file():
            return False, explain_failure(list(self.tail), returncode)
        self.manager.db.execute(
            "INSERT INTO exports (experiment_id, path, streaming, fidelity, step, size_bytes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.experiment["id"], str(self.path), int(self.streaming), self.fidelity,
             self.experiment.get("current_step"), self.path.stat().st_size,
             now()))
        self.exported.emit(str(self.path))
        return True, f"Exported to {self.path}"


def list_exports(db, experiment_id: int) -> list[dict]:
    return [dict(r) for r in db.query("SELECT * FROM exports WHERE experiment_id = ? ORDER BY id DESC",
                                      (experiment_id,))]
