"""What a finished or running RAVE run's own ``config.gin`` says.

``rave train`` writes ``gin.operative_config_str()`` to ``RUN_DIR/config.gin``:
every binding RAVE used, ``--override`` values included. Phase 2 (adversarial
training) starts at ``model.RAVE.phase_1_duration``, which the shipped configs
bind to the macro (``model.RAVE.phase_1_duration = %PHASE_1_DURATION``, with
``PHASE_1_DURATION = 1000000`` among the macros) and a few bind to a number.

Plain Python: no gin, no torch. The binding syntax (``RAVE.phase_1_duration``,
``model.RAVE.…``, ``rave.model.RAVE.…``, numbers with ``_`` or in ``1e6`` form)
is read by the same rules as ``rave_cli.phase_1_duration`` reads overrides.
"""
from __future__ import annotations

import os
from pathlib import Path

from rave_gui.backend.rave_cli import _PHASE_OVERRIDE, _gin_int

CONFIG_NAME = "config.gin"


def phase_1_duration_of_text(text: str) -> int | None:
    """The step at which phase 2 starts according to gin text, or ``None`` when
    the text binds neither ``PHASE_1_DURATION`` nor ``RAVE.phase_1_duration``
    (or binds it to something that is not a number). As in gin, the last
    binding of a name wins, wherever the macro is bound."""
    macro = None
    binding: object = None  # None: unbound, "%": the macro, an int, or "?": unreadable
    for raw in text.splitlines():
        line = raw.split("#", 1)[0]  # gin comments; no number contains '#'
        match = _PHASE_OVERRIDE.match(line)
        if not match:
            continue
        value = match["value"]
        if match["key"] == "PHASE_1_DURATION":
            macro = _gin_int(value)
        elif value == "%PHASE_1_DURATION":
            binding = "%"
        else:
            number = _gin_int(value)
            binding = "?" if number is None else number
    if binding in (None, "%"):
        return macro
    return None if binding == "?" else binding


def phase_1_duration_of_run(run_dir: str | os.PathLike | None) -> int | None:
    """``PHASE_1_DURATION`` of a RAVE run folder (``NAME_<hash>``, or the path of
    its ``config.gin``), ``None`` when there is no readable config yet (RAVE
    writes it a few seconds after the start) or it names no phase-1 length."""
    if not run_dir:
        return None
    path = Path(run_dir)
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return phase_1_duration_of_text(text)
