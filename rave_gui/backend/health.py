"""Health rules for a live run: plain functions the RunController applies.

Each returns ``None`` when all is well, else a sentence for the person that
says what is wrong and what to do. Kinds: "nan", "stalled", "disk", "memory".
"""
from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

#: minutes without step progress (while the process lives) before a run is "stalled"
STALL_MINUTES = 10.0
#: a checkpoint's size when the run has none yet (RAVE v2 checkpoints with optimizers: ~0.3-1 GB)
DEFAULT_CHECKPOINT_BYTES = 400_000_000
_OOM_RE = re.compile(r"CUDA out of memory|OutOfMemoryError|DefaultCPUAllocator: can't allocate memory"
                     r"|\bMemoryError\b|Killed\s*$", re.I)


def non_finite_terms(metrics: dict) -> list[str]:
    """The terms of one step's metrics that are NaN or infinite."""
    bad = []
    for key, value in metrics.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(float(value)):
            bad.append(key)
    return sorted(bad)


def nan_alert(metrics: dict) -> str | None:
    bad = non_finite_terms(metrics)
    if not bad:
        return None
    return (f"At step {metrics.get('step', '?'):,} RAVE logged {', '.join(bad)} as NaN or infinite: the "
            "training diverged. Resume from an earlier checkpoint with a smaller batch, or check the dataset "
            "for silent or clipped files.") if isinstance(metrics.get("step"), int) else (
            f"RAVE logged {', '.join(bad)} as NaN or infinite: the training diverged.")


def stall_alert(seconds_without_progress: float, minutes: float = STALL_MINUTES) -> str | None:
    if seconds_without_progress < minutes * 60:
        return None
    return (f"No step for {seconds_without_progress / 60:.0f} minutes while the process still runs: the run "
            "looks stalled (a data loader stuck on a file, a hung GPU). Stop it (a checkpoint is saved) and "
            "resume it; if it stalls again, look at the end of its log.")


def expected_checkpoint_bytes(checkpoints: list[dict]) -> int:
    """The size of the run's next checkpoint: its largest so far, else a typical one."""
    sizes = [c.get("size") or 0 for c in checkpoints]
    return max(sizes) if sizes and max(sizes) > 0 else DEFAULT_CHECKPOINT_BYTES


def disk_alert(folder: str | Path, next_checkpoint_bytes: int) -> str | None:
    """Free space under the run's folder below what the next checkpoint needs (with a
    margin for RAVE's two files per validation: best and last)."""
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return None
    needed = 2 * next_checkpoint_bytes
    if free >= needed:
        return None
    return (f"Only {free / 1e9:.2f} GB is free under {folder}, and the next checkpoint needs about "
            f"{needed / 1e9:.2f} GB: RAVE will crash when it saves. Free some space now (delete old "
            "checkpoints on the Checkpoints tab, or other files).")


def memory_alert(line: str) -> str | None:
    if not _OOM_RE.search(line):
        return None
    if "CUDA" in line or "OutOfMemoryError" in line:
        return ("The GPU ran out of memory. Stop the run and start it again with a smaller batch size "
                "or a smaller config (v2_small); phase 2 needs more memory than phase 1.")
    return ("The computer ran out of memory. Lower the batch size or the number of workers, "
            "or use a smaller config (v2_small).")
