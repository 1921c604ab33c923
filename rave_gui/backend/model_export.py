"""Export from a chosen checkpoint, and what the fidelity choice keeps.

How acids-rave 2.3.1's ``rave export`` (``scripts/export.py``) picks a checkpoint:
there is no ``--ckpt`` flag. ``--run`` goes through ``rave.core.search_for_run``:
a value containing ``.ckpt`` is used as the checkpoint itself; a folder gives the
newest ``*.ckpt`` below it by modification time (``get_ckpts`` sorts on
``os.path.getmtime`` and takes the last): whichever RAVE or the app wrote last,
often ``best.ckpt`` or ``epoch-epoch=N.ckpt`` (the confusion of upstream PR #256).
The gin config is found from the checkpoint's folder by
``search_for_config``: a ``config.gin`` below it, else ``../config.gin``, else
``../../config.gin``, which is where ``RUN/version_N/checkpoints/X.ckpt`` has it.

So the app passes the chosen checkpoint file as ``--run`` (measured: ``rave
export --run RUN/version_0/checkpoints/best.ckpt`` logs ``model found :
.../best.ckpt`` and exports it). A checkpoint that is not in that layout (no
``config.gin`` two folders up) is linked into a scratch run folder
``SCRATCH/<run>/version_0/checkpoints/<file>`` beside a copy of the run's
``config.gin``, and that link is passed instead (a symbolic link, else a hard
link, else a copy).

``"last"`` is RAVE's own choice (the newest file); ``"best"`` the newest
``best.ckpt`` (lowest validation loss of its version).
"""
from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path

from rave_gui.backend.checkpoints import list_checkpoints

BEST, LAST = "best", "last"
FIDELITY_PREFIX = "fidelity_"
#: the keys RAVE 2.3.1 logs at validation (``model.py``: ``var_percent = [.8, .9, .95, .99]``)
FIDELITY_KEYS = ("fidelity_0.8", "fidelity_0.9", "fidelity_0.95", "fidelity_0.99")
_LATENT_RE = re.compile(r"^\s*LATENT_SIZE\s*=\s*(\d+)\s*$", re.MULTILINE)


def checkpoint_label(ckpt: dict) -> str:
    parts = [ckpt["file"]]
    if ckpt.get("step") is not None:
        parts.append(f"step {ckpt['step']:,}")
    if ckpt.get("validation") is not None:
        parts.append(f"validation {ckpt['validation']:.4g}")
    if ckpt.get("version") and ckpt["version"] != "version_0":
        parts.append(ckpt["version"])
    return " \u00b7 ".join(parts)


def checkpoint_options(run_dir) -> list[tuple[str, str]]:
    """``(key, label)`` for the export dialog: best, last, then every checkpoint
    (newest first); ``key`` is what ``resolve_checkpoint`` takes."""
    found = [c for c in list_checkpoints(run_dir) if not c.get("remote")]
    if not found:
        return []
    options = []
    best = _best(found)
    if best is not None:
        options.append((BEST, "Best (lowest validation loss): " + checkpoint_label(best)))
    options.append((LAST, "Last saved (what `rave export --run` picks): " + checkpoint_label(found[-1])))
    options += [(c["path"], checkpoint_label(c)) for c in reversed(found)]
    return options


def _best(found: list[dict]) -> dict | None:
    return next((c for c in reversed(found) if c["best"]), None)


def resolve_checkpoint(run_dir, choice: str | os.PathLike | None) -> dict:
    """The checkpoint entry (as ``list_checkpoints`` gives it) for ``"best"``,
    ``"last"`` (or None) or a checkpoint's path; a ``ValueError`` sentence otherwise."""
    every = list_checkpoints(run_dir)
    found = [c for c in every if not c.get("remote")]
    choice = LAST if choice is None else choice
    if not found:
        if every:
            raise ValueError("This run's checkpoints are on the machine it trained on, not on this "
                             "computer: export it there, or copy its run folder here.")
        raise ValueError("This run has no checkpoint to export yet: RAVE saves one at each validation.")
    if choice == LAST:
        return found[-1]
    if choice == BEST:
        best = _best(found)
        if best is None:
            raise ValueError("This run has no best.ckpt (RAVE writes it at the first validation); "
                             "export the last checkpoint instead.")
        return best
    wanted = os.path.realpath(choice)
    for ckpt in every:
        if os.path.realpath(ckpt["path"]) == wanted:
            if ckpt.get("remote"):
                raise ValueError(f"{ckpt['file']} is on the machine this run trained on, not on this computer.")
            return ckpt
    raise ValueError(f"{Path(choice).name} is not a checkpoint of this run (it may have been deleted); "
                     "choose another one.")


def rave_finds_config(ckpt_path: str | os.PathLike) -> bool:
    """Whether ``rave export --run CKPT`` finds the run's config for this file:
    ``config.gin`` two folders up (``RUN/version_N/checkpoints/X.ckpt``) and none
    nearer that would be taken first."""
    folder = Path(ckpt_path).parent
    if (folder / "config.gin").exists() or (folder.parent / "config.gin").exists():
        return False
    if any(folder.rglob("config.gin")):
        return False
    return (folder.parent.parent / "config.gin").is_file()


def rave_run_argument(ckpt_path: str | os.PathLike, run_dir: str | os.PathLike,
                      scratch: str | os.PathLike) -> tuple[str, Path | None]:
    """The ``--run`` value that makes ``rave export`` load ``ckpt_path``, and the
    scratch folder made for it (None when the file itself will do; delete it after)."""
    ckpt = Path(ckpt_path)
    if ".ckpt" in ckpt.name and rave_finds_config(ckpt):
        return str(ckpt), None
    config = Path(run_dir) / "config.gin"
    if not config.is_file():
        raise ValueError(f"The run folder {run_dir} has no config.gin, which `rave export` needs; "
                         "it cannot be exported.")
    root = Path(scratch)
    name = ckpt.name if ckpt.name.endswith(".ckpt") else ckpt.name + ".ckpt"
    folder = root / Path(run_dir).name / "version_0" / "checkpoints"
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copyfile(config, folder.parent.parent / "config.gin")
    target = folder / name
    try:
        os.symlink(ckpt.resolve(), target)
    except OSError:
        try:
            os.link(ckpt, target)
        except OSError:
            shutil.copyfile(ckpt, target)
    return str(target), root


# -- fidelity ------------------------------------------------------------------------------

def rave_latent_size(needed: int) -> int:
    """What ``rave export`` keeps for a variational model: ``max(argmax(fidelity >
    F), 1)`` rounded up to a power of two (upstream #267)."""
    n = max(int(needed), 1)
    return 2 ** math.ceil(math.log2(n))


def full_latent_size_of_run(run_dir) -> int | None:
    """The encoder's full latent size, ``LATENT_SIZE`` in the run's ``config.gin``."""
    try:
        text = (Path(run_dir) / "config.gin").read_text(encoding="utf-8", errors="replace")
    except (OSError, TypeError):
        return None
    match = _LATENT_RE.search(text)
    return int(match.group(1)) if match else None


def _threshold(key: str) -> float | None:
    try:
        return float(key[len(FIDELITY_PREFIX):])
    except ValueError:
        return None


def fidelity_at(history: dict, step: int | None) -> dict[float, int]:
    """The run's logged ``fidelity_p`` values (RAVE's ``argmax(cumulated variance >
    p)``) at the last validation at or before ``step`` (all of them: the newest)."""
    out = {}
    for key, points in history.items():
        p = _threshold(key) if key.startswith(FIDELITY_PREFIX) else None
        if p is None or not points:
            continue
        usable = [(s, v) for s, v in points if step is None or s <= step] or points[:1]
        value = max(usable)[1]
        if value == value:  # not NaN
            out[p] = int(round(value))
    return out


def fidelity_preview(history: dict, fidelity: float, step: int | None = None,
                     full_latent_size: int | None = None) -> dict:
    """What ``--fidelity`` keeps for this run: ``{"exact": bool, "low": n, "high": n,
    "sentence": ...}`` (low == high when a logged threshold matches; None when the
    run logged no fidelity)."""
    values = fidelity_at(history, step)
    where = f" at step {step:,}" if step is not None else ""
    if not values:
        return {"exact": False, "low": None, "high": None,
                "sentence": ("This run logged no fidelity (RAVE logs it at validations before phase 2, "
                             "for variational models): the model's latent size is shown once it is exported "
                             "and checked.")}
    thresholds = sorted(values)
    match = next((p for p in thresholds if abs(p - fidelity) < 1e-6), None)
    if match is not None:
        kept = rave_latent_size(values[match])
        return {"exact": True, "low": kept, "high": kept, "sentence": (
            f"At fidelity {fidelity:g}, RAVE will keep {kept} latent dimension{'s' if kept != 1 else ''}"
            f" ({values[match]} needed{where}, rounded up to a power of two).")}
    below = [p for p in thresholds if p < fidelity]
    above = [p for p in thresholds if p > fidelity]
    low = rave_latent_size(values[below[-1]]) if below else 1
    high = rave_latent_size(values[above[0]]) if above else (full_latent_size or None)
    if high is not None and low > high:
        low, high = high, low
    logged = ", ".join(f"{p:g} \u2192 {rave_latent_size(values[p])}" for p in thresholds)
    span = f"{low}" if high == low else (f"between {low} and {high}" if high else f"at least {low}")
    return {"exact": False, "low": low, "high": high, "sentence": (
        f"At fidelity {fidelity:g}, RAVE will keep {span} latent dimensions (logged{where}: {logged}).")}
