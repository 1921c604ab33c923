"""One run's signals from a RunController, and how it ended (shared by the remote tests)."""
from __future__ import annotations

from rave_gui.backend.run_state import TERMINAL


class Recorder:
    def __init__(self, controller, exp_id):
        self.steps, self.metrics, self.lines, self.warnings, self.result = [], [], [], [], None
        manager = controller.manager

        def changed(e, what):
            if e == exp_id and what == "status":
                exp = manager.get_experiment(e)
                if not controller.is_live(e) and exp["status"] in TERMINAL:
                    self.result = (exp["status"], exp["error"])
        controller.step_changed.connect(lambda e, s, t: e == exp_id and self.steps.append(s))
        controller.metrics_added.connect(lambda e, m: e == exp_id and self.metrics.append(m))
        controller.log_line.connect(lambda e, line: e == exp_id and self.lines.append(line))
        controller.warning.connect(lambda e, text: e == exp_id and self.warnings.append(text))
        controller.run_changed.connect(changed)

    def pairs(self) -> list[tuple[str, int]]:
        return [(k, m["step"]) for m in self.metrics for k in m if k != "step"]


def host_points(run_dir) -> dict:
    """Every point a run folder's event files hold, read from scratch: ``{tag: {step: value}}``
    (what a run's history must equal)."""
    from rave_gui.backend.events import RunEventsFollower
    history: dict = {}
    for point in RunEventsFollower(run_dir).poll(final=True):
        for key, value in point.items():
            if key != "step":
                history.setdefault(key, {})[point["step"]] = value
    return history


def export_run(qtbot, controller, exp_id, output_dir, timeout: int = 400_000) -> tuple[bool, str]:
    """Export a run through ``controller`` (streaming) and wait for its end: (ok, path or reason)."""
    results = []
    controller.export_done.connect(lambda e, ok, msg: results.append((ok, msg)) if e == exp_id else None)
    export = controller.export(exp_id, {"output_dir": output_dir, "streaming": True})
    qtbot.waitUntil(lambda: bool(results), timeout=timeout)
    export.wait(10_000)
    return results[0]
