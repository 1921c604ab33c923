"""Plays a run's validation audio through the Audio tab on a real audio output and
prints what it saw as one JSON line (the last line of stdout).

Used by tests/test_ui/test_audio_view.py::test_player_on_a_real_device in a fresh
process, because QtMultimedia reads the list of audio devices once per process: the
test starts a private PulseAudio daemon (a null sink) and runs this script with
``PULSE_SERVER`` pointing at it.

    python tests/audio_device_check.py RUN_DIR
"""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MPLBACKEND", "QtAgg")

from PyQt6.QtWidgets import QApplication  # noqa: E402

from rave_gui.ui.widgets.audio_view import AudioPlayer, AudioView  # noqa: E402

TIMEOUT = 10.0


def wait_until(app: QApplication, condition, timeout: float = TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        app.processEvents()
        time.sleep(0.005)
    return True


def main(run_dir: str) -> int:
    app = QApplication.instance() or QApplication([])
    checks: dict[str, bool] = {}
    result: dict = {"checks": checks}
    device = AudioPlayer._output_device()
    checks["output_device"] = device is not None
    result["device"] = device.description() if device is not None else None
    view = AudioView()
    try:
        view.set_run(run_dir)
        checks["loaded"] = wait_until(app, lambda: len(view.validations) == 3)
        if checks["output_device"] and checks["loaded"]:
            view.loop_check.setChecked(True)
            checks["plays_original"] = bool(view.play("original")) and view.is_playing()
            result["status"] = view.status_text()
            checks["position_advances"] = checks["plays_original"] and wait_until(
                app, lambda: view.player.position() > 0.05)
            sink, before = view.player._sink, view.player.position()
            checks["plays_reconstruction"] = bool(view.play("reconstruction")) and view.is_playing()
            # A/B: the same output keeps going, from the same place, with the other side
            checks["same_sink"] = sink is not None and view.player._sink is sink
            checks["reconstruction_active"] = (view.player._source is not None
                                               and view.player._source.active == 1)
            checks["position_kept"] = view.player.position() >= before
            result["positions"] = [before, view.player.position()]
            view.stop()
            checks["stopped"] = not view.is_playing()
        view.set_run(None)
        checks["cleared"] = view.validations == [] and not view.is_playing()
        result["status"] = result.get("status") or view.status_text()
    finally:
        view.close()
        view.deleteLater()
        app.processEvents()
    print(json.dumps(result), flush=True)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
