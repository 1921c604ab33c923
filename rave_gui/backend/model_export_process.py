"""``rave export`` from a chosen checkpoint, recorded in the models library and
checked right after, in a subprocess with torch.

``CheckpointExportProcess`` takes the options of ``ExportProcess`` plus
``checkpoint`` ("best", "last" or a checkpoint's path; see ``model_export`` for
how RAVE 2.3.1 is made to load it) and ``verify``. Its file is
``NAME[_best|_stepN]_streaming.ts``: exporting another checkpoint never
overwrites the last one's file (``last`` keeps RAVE's own name). On success it
records the model (checkpoint file, step, validation loss) and runs
``model_check``; a model that fails the check stays listed, marked broken, and
the export ends with the check's sentence. ``stop()`` reaches the check too.
"""
from __future__ import annotations

import shutil

from rave_gui.backend.export import ExportProcess, export_name
from rave_gui.backend.log_parsing import explain_failure
from rave_gui.backend.model_export import BEST, LAST, rave_run_argument, resolve_checkpoint
from rave_gui.backend.model_tools import run_check
from rave_gui.backend.models import ModelLibrary

EXPORT_SHARE = 80  # percent of the bar for rave export; the check takes the rest


def model_stem(experiment_name: str, checkpoint: dict | None, choice) -> str:
    if choice in (None, LAST) or checkpoint is None:
        return experiment_name
    if choice == BEST:
        return f"{experiment_name}_best"
    if checkpoint.get("step") is not None:
        return f"{experiment_name}_step{checkpoint['step']}"
    return f"{experiment_name}_{checkpoint['file'].rsplit('.', 1)[0]}"


class CheckpointExportProcess(ExportProcess):

    def __init__(self, manager, experiment_id: int, output_dir=None, streaming: bool = True,
                 fidelity: float = 0.95, checkpoint=LAST, verify: bool = True, parent=None):
        super().__init__(manager, experiment_id, output_dir=output_dir, streaming=streaming,
                         fidelity=fidelity, parent=parent)
        self.choice = checkpoint or LAST
        self.verify = verify
        self.checkpoint: dict | None = None
        self.model_id: int | None = None
        self.check_result: dict | None = None
        self._scratch = None
        self.stem = self.experiment["name"]

    def prepare(self) -> None:
        super().prepare()
        self.checkpoint = resolve_checkpoint(self.run_dir, self.choice)
        self.stem = model_stem(self.experiment["name"], self.checkpoint, self.choice)
        self.path = self.output_dir / export_name(self.stem, self.streaming)
        self.run_argument, self._scratch = rave_run_argument(
            self.checkpoint["path"], self.run_dir, self.paths.out_dir / "export-scratch")

    def build_command(self) -> list[str]:
        argv = super().build_command()
        argv[argv.index("--run") + 1] = self.run_argument
        argv[argv.index("--name") + 1] = self.stem
        return argv

    def handle_line(self, line: str) -> None:
        if "model found" in line:
            self.progress.emit(EXPORT_SHARE // 4, f"model found ({self.checkpoint['file']})")
        elif "script model" in line:
            self.progress.emit(EXPORT_SHARE // 2, "script model")
        elif "save model" in line:
            self.progress.emit(3 * EXPORT_SHARE // 4, "save model")
        elif "all good" in line:
            self.progress.emit(EXPORT_SHARE, "exported")

    def outcome(self, returncode: int) -> tuple[bool, str]:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
        if self.stop_requested:
            return False, "Export cancelled."
        if returncode != 0 or not self.path.is_file():
            return False, explain_failure(list(self.tail), returncode)
        library = ModelLibrary(self.manager.db)
        self.model_id = library.record_export(self.experiment, self.path, self.streaming, self.fidelity,
                                              self.checkpoint)
        self.exported.emit(str(self.path))
        if not self.verify:
            return True, f"Exported to {self.path}"
        self.progress.emit(EXPORT_SHARE, "checking the model")
        result = run_check(self.path, should_stop=lambda: self.stop_requested,
                           on_progress=lambda pct, what: self.progress.emit(
                               EXPORT_SHARE + (100 - EXPORT_SHARE) * pct // 100, f"checking: {what}"))
        if result is None:
            return True, f"Exported to {self.path} (the check was cancelled; check it from the Models page)."
        self.check_result = result
        library.record_check(self.model_id, result)
        if not result["ok"]:
            return False, (f"Exported to {self.path}, but the model failed its check: {result['message']} "
                           "It is listed as broken on the Models page.")
        return True, f"Exported to {self.path}"
