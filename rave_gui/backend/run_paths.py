"""Every path of a run, from its record: one place, stored rather than guessed.

``out_dir`` is the app's own folder for the experiment (``runs/<id>``); RAVE
creates its run folder ``NAME_<hash>`` inside it, and the launcher prints it
(``run_dir=``), which the app stores. ``find_run_dir`` (newest folder that
looks like a RAVE run) remains only for records written by older versions.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def find_run_dir(out_dir: str | Path | None) -> Path | None:
    """The ``NAME_<hash>`` folder RAVE created inside an experiment's output folder
    (fallback for records from before the run folder was stored)."""
    if not out_dir:
        return None
    out = Path(out_dir)
    try:
        runs = [p for p in out.iterdir()
                if p.is_dir() and ((p / "config.gin").exists() or any(p.glob("version_*")))]
        return max(runs, key=lambda p: p.stat().st_mtime) if runs else None
    except OSError:
        return None


@dataclass(frozen=True)
class RunPaths:
    out_dir: Path
    stored_run_dir: Path | None

    @classmethod
    def of(cls, experiment: dict) -> "RunPaths":
        out = Path(experiment.get("out_dir") or ".")
        stored = experiment.get("run_dir")
        return cls(out, Path(stored) if stored else None)

    @property
    def run_dir(self) -> Path | None:
        """RAVE's run folder: the stored one, else (older records) the guess."""
        if self.stored_run_dir is not None:
            return self.stored_run_dir
        return find_run_dir(self.out_dir)

    @property
    def log(self) -> Path:
        return self.out_dir / "train.log"

    @property
    def export_log(self) -> Path:
        return self.out_dir / "export.log"

    @property
    def export_dir(self) -> Path:
        return self.out_dir / "export"

    def checkpoints(self) -> list[dict]:
        from rave_gui.backend.checkpoints import list_checkpoints
        return list_checkpoints(self.run_dir)

    def resume_checkpoint(self) -> dict | None:
        """The checkpoint ``rave train --ckpt RUN`` starts from, or None."""
        return next((c for c in self.checkpoints() if c["resume"]), None)
