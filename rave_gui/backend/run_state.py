"""A run's status: one state machine, its allowed transitions as data.

::

    queued -> starting -> running -> stopping -> stopped | completed | failed | interrupted
    queued -> stopped                          (taken off the queue, never started)
    stopped | completed | failed | interrupted -> starting   (resume)

``starting`` is a run the app is launching (no process yet, or one that has
not reported in); ``stopping`` a run asked to stop whose launcher is still
writing its stop checkpoint. Plain Python: ``TrainingManager.set_status``
applies a transition, the ``RunController`` calls it on the main thread.
"""
from __future__ import annotations

STATES = ("queued", "starting", "running", "stopping", "stopped", "completed", "failed", "interrupted")

#: the only transitions there are; anything else raises ``TransitionError``
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"starting", "stopped"}),
    "starting": frozenset({"running", "stopping", "stopped", "completed", "failed", "interrupted"}),
    "running": frozenset({"stopping", "stopped", "completed", "failed", "interrupted"}),
    "stopping": frozenset({"stopped", "completed", "failed", "interrupted"}),
    "stopped": frozenset({"starting"}),
    "completed": frozenset({"starting"}),
    "failed": frozenset({"starting"}),
    "interrupted": frozenset({"starting"}),
}

#: a process is (or should be) behind these
LIVE = frozenset({"starting", "running", "stopping"})
#: the end of a process; each can be resumed
TERMINAL = frozenset({"stopped", "completed", "failed", "interrupted"})
RESUMABLE = TERMINAL


class TransitionError(ValueError):
    """A status change the state machine does not allow; the message says which."""


def check_transition(old: str, new: str) -> None:
    """Raise ``TransitionError`` unless ``old -> new`` is allowed."""
    if new not in TRANSITIONS:
        raise TransitionError(f"Unknown status {new!r}; use one of {', '.join(STATES)}.")
    if old not in TRANSITIONS:
        raise TransitionError(f"The run has an unknown status {old!r}.")
    if new not in TRANSITIONS[old]:
        raise TransitionError(f"A {old} run cannot become {new}.")


def describe(status: str, step: int | None = None) -> str:
    """How the table shows a status (``stopping`` names the checkpoint's step)."""
    if status == "stopping" and step is not None:
        return f"stopping (saving step {step:,})"
    return status
