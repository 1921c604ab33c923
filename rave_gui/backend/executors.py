"""Which process runs an experiment: here (a local process group) or on another
machine. The RunController asks this module; each kind of process has the same
signals and control methods as ``TrainingProcess`` / ``ExportProcess``."""
from __future__ import annotations


def training_process_class(experiment: dict):
    """The class whose instances train ``experiment`` (its ``config["machine_id"]``
    names a machine of the Machines page; none: this computer)."""
    if experiment["config"].get("machine_id") is None:
        from rave_gui.backend.training_process import TrainingProcess
        return TrainingProcess
    from rave_gui.backend.remote_process import RemoteTrainingProcess
    return RemoteTrainingProcess


def export_process_class(experiment: dict):
    if experiment["config"].get("machine_id") is None:
        # rave export from a chosen checkpoint (options "checkpoint", "verify"), recorded in the
        # models library and checked with torch in a subprocess right after
        from rave_gui.backend.model_export_process import CheckpointExportProcess
        return CheckpointExportProcess
    from rave_gui.backend.remote_process import RemoteExportProcess
    return RemoteExportProcess
