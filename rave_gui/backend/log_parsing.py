"""Regex parsers for what RAVE, Lightning and tqdm print.

Pure functions, no Qt. RAVE 2.3.1 prints no loss values itself (the numbers
live in TensorBoard event files, see ``events``); ``parse_metrics`` reads
``key=value`` style metrics wherever a line carries them (the app's launcher
prints ``[rave-gui] step=N``), and the progress parsers read the
``\\r``-separated bars.
"""
from __future__ import annotations

import re

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"

# Alternatives are ordered so the longer name wins ("val loss" is never "loss").
_METRIC_RE = re.compile(
    r"(?<![\w./\-'\"])"
    r"(?P<key>val(?:idation)?[_ ]loss|validation|learning[_ ]rate|global[_ ]step|step|epoch|loss|lr)"
    r"(?![\w\-'\"])\s*(?:[=:]\s*|\s+)"
    # the number must end the token: not "0%" (a tqdm "Validation:   0%|" bar), not "1.2.3",
    # but "loss 0.5." at the end of a sentence is fine
    rf"(?P<value>{_NUMBER})(?:/(?P<total>\d+))?(?![\w%]|\.\d)",
    re.IGNORECASE,
)
# Lines that carry no metrics even when a metric's name and a number appear in
# them: a traceback's header and frames, an exception's message, and table rows
# (Lightning's profiler report and model summary start with "|").
_NOT_METRICS_RE = re.compile(
    r"^\s*(?:\||Traceback \(most recent call last\)|File \"|During handling of the above exception"
    r"|[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)(?::|$))"
)

_CANONICAL = {
    "val_loss": "val_loss", "val loss": "val_loss", "validation_loss": "val_loss",
    "validation loss": "val_loss", "validation": "val_loss",
    "learning_rate": "lr", "learning rate": "lr", "lr": "lr",
    "global_step": "step", "global step": "step", "step": "step",
    "epoch": "epoch", "loss": "loss",
}
_INT_KEYS = {"step", "epoch"}


def parse_metrics(line: str) -> dict:
    """Metrics found in one line of log: ``loss``, ``val_loss``, ``step``,
    ``epoch``, ``lr``. Floats, except ``step`` and ``epoch`` (ints); only the
    keys found; ``{}`` when there are none."""
    found: dict = {}
    if _NOT_METRICS_RE.match(line):
        return found
    for match in _METRIC_RE.finditer(line):
        key = _CANONICAL[match.group("key").lower()]
        if key in found:
            continue
        raw = match.group("value")
        try:
            value = float(raw)
        except ValueError:  # pragma: no cover - the regex only admits numbers
            continue
        if key in _INT_KEYS:
            if value != int(value) or value < 0:
                continue
            found[key] = int(value)
        else:
            found[key] = value
    return found


_PROGRESS_RE = re.compile(
    r"(?P<phase>Epoch (?P<epoch>\d+)|Validation(?: DataLoader \d+)?|Sanity Checking(?: DataLoader \d+)?"
    r"|Training|Predicting(?: DataLoader \d+)?)"
    r":\s*(?P<percent>\d{1,3})%\|[^|]*\|\s*(?P<current>\d+)/(?P<total>\d+)"
)


def parse_progress_line(line: str) -> dict | None:
    """Read one of Lightning's tqdm bars:
    ``Epoch 3:  45%|████▌     | 120/266 [00:12<00:14, ...]``.

    Returns ``{'phase', 'epoch', 'percent', 'current', 'total'}`` (``epoch`` is
    None outside training) or None for any other line."""
    match = _PROGRESS_RE.search(line)
    if not match:
        return None
    phase = match.group("phase")
    epoch = match.group("epoch")
    return {
        "phase": "train" if epoch is not None else phase.split()[0].lower(),
        "epoch": int(epoch) if epoch is not None else None,
        "percent": int(match.group("percent")),
        "current": int(match.group("current")),
        "total": int(match.group("total")),
    }


_PREPROCESS_RE = re.compile(r"dataset length:\s*(?:(?P<d>\d+) days?, )?(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2}(?:\.\d+)?)")


def parse_preprocess_line(line: str) -> float | None:
    """Seconds of audio ``rave preprocess`` has written so far
    (``dataset length: 0:00:29.72``), or None."""
    match = _PREPROCESS_RE.search(line)
    if not match:
        return None
    days = int(match.group("d") or 0)
    return days * 86400 + int(match.group("h")) * 3600 + int(match.group("m")) * 60 + float(match.group("s"))


_FIT_END_RE = re.compile(r"`Trainer\.fit` stopped: `max_steps=(\d+)` reached")


def parse_fit_end(line: str) -> int | None:
    """The max_steps value when Lightning reports a normal end of training."""
    match = _FIT_END_RE.search(line)
    return int(match.group(1)) if match else None


_EXPLANATIONS = [
    (re.compile(r"No such file or directory: '([^']*)metadata\.yaml'"),
     "The dataset folder {0} is missing or is not a preprocessed RAVE dataset. "
     "Check the dataset on the Datasets page, then start the run again."),
    (re.compile(r"cannot reshape tensor of 0 elements"),
     "RAVE could not build the model for this dataset's channel count. "
     "Re-import the dataset so its metadata.yaml gives the channels."),
    (re.compile(r"CUDA out of memory|OutOfMemoryError", re.I),
     "The GPU ran out of memory. Lower the batch size or use a smaller config (v2_small)."),
    (re.compile(r"DefaultCPUAllocator: can't allocate memory|MemoryError"),
     "The computer ran out of memory. Lower the batch size or use a smaller config (v2_small)."),
    (re.compile(r"val_every // len\(train\)|ZeroDivisionError: integer division or modulo by zero"),
     "The dataset has fewer training examples than one batch (RAVE keeps only whole batches). "
     "Lower the batch size, or add audio to the dataset."),
    (re.compile(r"No space left on device"),
     "The disk is full. Free some space (delete old checkpoints), then resume."),
    (re.compile(r"Training on mac is not available yet"),
     "RAVE cannot train on a Mac GPU. Choose CPU as the device."),
    # measured: `--override rave.RAVE.phase_1_duration=N` stops `rave train` at once, because
    # outside the gin files the class is rave.model.RAVE; RAVE.phase_1_duration=N works
    (re.compile(r"No configurable matching 'rave\.RAVE'"),
     "RAVE did not accept an override: it does not know the name rave.RAVE. Write RAVE.… instead "
     "(for example RAVE.phase_1_duration=200000)."),
    # gin's errors, read on the exception line (the traceback above it shows gin's own source,
    # ``raise ValueError(f"No configurable matching '{selector}'.")``)
    (re.compile(r"^\w*(?:Error|Exception): (?P<m>(?:Unknown|No) configurable[^\n]*?(?=\.?\s*$)|"
                r"Could not find configurable[^\n]*?(?=\.?\s*$)|Unable to (?:find|open) file:? \S+?\.gin|"
                r"Configurable '[^']*' doesn't have a parameter named '[^']*')", re.M),
     "RAVE did not accept the configuration: {m}. Check the config, modifiers and overrides."),
]
_EXCEPTION_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt))\b:?\s*(.*)$")


def explain_failure(lines: list[str], returncode: int | None) -> str:
    """One sentence saying why a RAVE command failed, from its last lines."""
    text = "\n".join(lines)
    for pattern, message in _EXPLANATIONS:
        match = pattern.search(text)
        if match:
            return message.format(*match.groups(), m=(match.groupdict().get("m") or match.group(0)).strip())
    if returncode is not None and returncode < 0:
        return (f"The process was killed by signal {-returncode} (the system may have run out "
                "of memory). See the log for details.")
    for line in reversed(lines):
        match = _EXCEPTION_LINE.match(line)
        if match:
            return f"RAVE stopped with {match.group(1)}: {match.group(2).strip() or 'no message'}. See the log for details."
    return f"RAVE exited with code {returncode}. See the log for details."


_BAR_RE = re.compile(r"[^\r\n|]*?:\s*\d{1,3}%\|[^|]*\|\s*\d+/\d+(?: \[[^\]]*\])?|[^\r\n|]*?: \d+it \[[^\]]*\]")


_ANSI_RE = re.compile(r"\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_OWN_STEP_RE = re.compile(r"\[rave-gui(?::\w+)?\] step=\d+/\d+\s*$")


def strip_progress(line: str) -> str:
    """The line as the Log tab shows it: without tqdm bar redraws (text printed
    after a bar survives: ``...| 2/2 [00:01<00:00]`Trainer.fit` stopped: ...`` ->
    the message), without terminal escapes (``ESC[A`` and colours), and without
    the launcher's step lines (one per half second: the progress bar shows them)."""
    line = _BAR_RE.sub("", _ANSI_RE.sub("", line)).strip()
    return "" if _OWN_STEP_RE.fullmatch(line) else line


_LAUNCHER_STEP_RE = re.compile(r"step=(\d{1,12})/(\d{1,12})")
_LAUNCHER_CKPT_RE = re.compile(r"checkpoint=(.+) step=(\d{1,12})")
_LAUNCHER_SAVED_RE = re.compile(r"saved (.+) at step=(\d{1,12})")


def launcher_marker(token: str | None) -> str:
    """What starts every line of the app's launcher for a launch with ``token``."""
    return f"[rave-gui:{token}] " if token else "[rave-gui] "


def parse_launcher_line(line: str, token: str | None) -> dict | None:
    """One of the launcher's own lines (``rave_launcher``), or None.

    Only text after the launch's marker counts (a tqdm bar may come before it on
    the same line); each kind of line must match whole, so a run name or a path
    that contains ``step=N`` cannot change the step: ``{"step", "total"}``,
    ``{"run_dir"}``, ``{"checkpoint", "step"}``, ``{"saved", "step"}`` or
    ``{"stop_requested": True}``."""
    marker = launcher_marker(token)
    at = line.find(marker)
    if at < 0:
        return None
    text = line[at + len(marker):].rstrip("\n")
    match = _LAUNCHER_STEP_RE.fullmatch(text)
    if match:
        return {"step": int(match.group(1)), "total": int(match.group(2))}
    if text.startswith("run_dir="):
        return {"run_dir": text[len("run_dir="):]}
    match = _LAUNCHER_CKPT_RE.fullmatch(text)
    if match:
        return {"checkpoint": match.group(1), "step": int(match.group(2))}
    match = _LAUNCHER_SAVED_RE.fullmatch(text)
    if match:
        return {"saved": match.group(1), "step": int(match.group(2))}
    if text.startswith("stop requested"):
        return {"stop_requested": True}
    return None
