"""Comparing runs: a summary row per run and a settings diff.

``summarize`` gives, per run, its status, steps done out of max, how long it
ran, and the final and best (lowest) value of ``loss`` and ``val_loss`` with
the step of the best. ``config_diff`` lines up the app's settings
(``experiment["config"]``) and RAVE's own ``config.gin`` bindings of the run
folder, one row per setting, flagged where the runs differ. Plain Python: the
Compare dialog renders what these return.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import re
from pathlib import Path
from typing import Iterable

from rave_gui.backend.run_paths import RunPaths
from rave_gui.backend.run_state import LIVE

SUMMARY_KEYS = ("loss", "val_loss")
MISSING = "\u2013"  # "–": no value for this run
GIN_PREFIX = "gin: "
SKIPPED_APP_KEYS = frozenset({"name"})  # the column header already says it


# -- summary ---------------------------------------------------------------------------

def _parse_time(text) -> _dt.datetime | None:
    if not text:
        return None
    try:
        return _dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None


def run_duration(experiment: dict, now: _dt.datetime | None = None) -> float | None:
    """Seconds from ``started_at`` to ``completed_at`` (or now, for a live run);
    None when the run never started or the times are unreadable."""
    start = _parse_time(experiment.get("started_at"))
    end = _parse_time(experiment.get("completed_at"))
    if end is None and experiment.get("status") in LIVE:
        end = now or _dt.datetime.now()
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def final_and_best(points: Iterable[tuple]) -> dict:
    """``{"final", "final_step", "best", "best_step"}`` of ``[(step, value), ...]``:
    final is the value at the highest step, best the lowest value (the first
    step reaching it). Non-finite values are ignored; None when nothing is left."""
    out = {"final": None, "final_step": None, "best": None, "best_step": None}
    for step, value in points:
        if value is None or not math.isfinite(value):
            continue
        if out["final_step"] is None or step >= out["final_step"]:
            out["final"], out["final_step"] = value, step
        if out["best"] is None or value < out["best"] or (value == out["best"] and step < out["best_step"]):
            out["best"], out["best_step"] = value, step
    return out


def _experiment(manager, experiment_id: int) -> dict:
    exp = manager.get_experiment(experiment_id)
    if exp is None:
        raise ValueError(f"There is no experiment {experiment_id}; it may have been deleted.")
    return exp


def summarize(manager, experiment_ids: Iterable[int], keys: Iterable[str] = SUMMARY_KEYS,
              now: _dt.datetime | None = None,
              histories: dict[int, dict] | None = None) -> list[dict]:
    """One dict per run, in the order given::

        {"id", "name", "status", "step", "max_steps", "started_at", "completed_at",
         "duration" (seconds or None),
         "final_loss", "final_loss_step", "best_loss", "best_loss_step",
         "final_val_loss", ..., "best_val_loss_step"}   (one group per key)

    ``histories`` ({id: ``get_metric_history(id)``}) spares reading them again.
    """
    keys = tuple(keys)
    rows = []
    for exp_id in experiment_ids:
        exp = _experiment(manager, exp_id)
        history = (histories or {}).get(exp_id)
        if history is None:
            history = manager.get_metric_history(exp_id, keys)
        row = {"id": exp_id, "name": exp.get("name") or f"run {exp_id}", "status": exp.get("status"),
               "step": int(exp.get("current_step") or 0),
               "max_steps": (exp.get("config") or {}).get("max_steps"),
               "started_at": exp.get("started_at"), "completed_at": exp.get("completed_at"),
               "duration": run_duration(exp, now)}
        for key in keys:
            stats = final_and_best(history.get(key, ()))
            row.update({f"final_{key}": stats["final"], f"final_{key}_step": stats["final_step"],
                        f"best_{key}": stats["best"], f"best_{key}_step": stats["best_step"]})
        rows.append(row)
    return rows


def update_summary(row: dict, metrics: dict, keys: Iterable[str] = SUMMARY_KEYS) -> bool:
    """Fold one live step's metrics (``{"step": s, key: value, ...}``) into a
    ``summarize`` row in place; True when something changed."""
    step = metrics.get("step")
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        return False
    step = int(step)
    changed = False
    if step > (row.get("step") or 0):
        row["step"], changed = step, True
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        value = float(value)
        final_step = row.get(f"final_{key}_step")
        if final_step is None or step >= final_step:
            row[f"final_{key}"], row[f"final_{key}_step"] = value, step
            changed = True
        best = row.get(f"best_{key}")
        if best is None or value < best:
            row[f"best_{key}"], row[f"best_{key}_step"] = value, step
            changed = True
    return changed


# -- config.gin --------------------------------------------------------------------------

_BINDING_RE = re.compile(r"^([A-Za-z_%@][\w./%@-]*(?:/[\w./-]+)*)\s*=\s*(.*)$")


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a '#' inside quotes stays)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#":
            return line[:i]
    return line


def _depth(text: str) -> int:
    depth, quote = 0, None
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
    return depth


def _normalise(value: str) -> str:
    value = re.sub(r"\s+", " ", value.replace("\\\n", " ")).strip()
    return re.sub(r"([\[({]) ", r"\1", re.sub(r" ([\])}])", r"\1", value))


def parse_gin(text: str) -> dict[str, str]:
    """``NAME = value`` bindings of a gin file, in file order; a value spread over
    several lines (a trailing backslash, open brackets, indented continuation)
    is joined into one line. Imports, includes and comments are skipped."""
    bindings: dict[str, str] = {}
    name, parts = None, []

    def finish():
        if name is not None:
            bindings[name] = _normalise(" ".join(parts))

    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        if not line.strip():
            continue
        joined = " ".join(parts)
        continuing = name is not None and (joined.endswith("\\") or _depth(joined) > 0
                                           or raw[:1] in (" ", "\t"))
        if continuing:
            if parts and parts[-1].endswith("\\"):
                parts[-1] = parts[-1][:-1]
            parts.append(line.strip())
            continue
        match = _BINDING_RE.match(line.strip())
        finish()
        name, parts = (match.group(1), [match.group(2)]) if match else (None, [])
    if parts and parts[-1].endswith("\\"):
        parts[-1] = parts[-1][:-1]
    finish()
    return bindings


def read_gin(path: str | Path | None) -> dict[str, str]:
    """The bindings of the ``config.gin`` at ``path``; {} when it is missing or unreadable."""
    if path is None:
        return {}
    try:
        return parse_gin(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return {}


def run_gin(experiment: dict) -> dict[str, str]:
    run_dir = RunPaths.of(experiment).run_dir
    return read_gin(run_dir / "config.gin") if run_dir is not None else {}


# -- diff ----------------------------------------------------------------------------

def config_text(value) -> str:
    """A setting as the diff table shows it."""
    if value is None:
        return "None"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def config_diff(manager, experiment_ids: Iterable[int]) -> list[tuple[str, list[str], bool]]:
    """Rows ``(setting, [value per run as text], differs)``: first the app's
    settings (sorted, the run name left out), then every ``config.gin`` binding
    as ``"gin: NAME"`` (sorted). A setting a run lacks shows as "–"."""
    exps = [_experiment(manager, exp_id) for exp_id in experiment_ids]
    app = [{k: config_text(v) for k, v in (e.get("config") or {}).items() if k not in SKIPPED_APP_KEYS}
           for e in exps]
    gin = [run_gin(e) for e in exps]
    rows = []
    for prefix, dicts in (("", app), (GIN_PREFIX, gin)):
        for key in sorted(set().union(*dicts) if dicts else ()):
            values = [d.get(key, MISSING) for d in dicts]
            rows.append((prefix + key, values, len(set(values)) > 1))
    return rows
