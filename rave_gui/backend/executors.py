"""Which process runs an experiment: here (a local process group) or on another
machine. The RunController asks this module; each kind of process has the same
signals and control methods as ``TrainingProcess`` / ``ExportProcess``."""
from __future__ import annotations


def training_process_class(experiment: dict, db=None):
    """The class whose instances train ``experiment`` (its ``config["machine_id"]``
    names a machine of the Machines page; none: this computer; ``db``: where the
    machine is recorded, an SSH host or a Slurm cluster)."""
    if experiment["config"].get("machine_id") is None:
        from rave_gui.backend.training_process import TrainingProcess
        return TrainingProcess
    if _on_slurm(experiment, db):
        from rave_gui.backend.slurm_process import SlurmTrainingProcess
        return SlurmTrainingProcess
    from rave_gui.backend.remote_process import RemoteTrainingProcess
    return RemoteTrainingProcess


def _on_slurm(experiment: dict, db) -> bool:
    """Does the run's machine submit to Slurm? (a machine removed since: no; the process
    then says so when it prepares)."""
    if db is None:
        return False
    from rave_gui.backend.machines import MachineManager, is_slurm
    return is_slurm(MachineManager(db).get(experiment["config"]["machine_id"]))


def export_process_class(experiment: dict, db=None):
    if experiment["config"].get("machine_id") is None:
        # rave export from a chosen checkpoint (options "checkpoint", "verify"), recorded in the
        # models library and checked with torch in a subprocess right after
        from rave_gui.backend.model_export_process import CheckpointExportProcess
        return CheckpointExportProcess
    from rave_gui.backend.remote_process import RemoteExportProcess
    return RemoteExportProcess  # on a Slurm cluster too: it reads the cluster's settings itself
