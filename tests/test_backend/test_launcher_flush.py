"""The launcher's live flush of RAVE's TensorBoard writer: after a logging step,
at most once per interval, deferred rather than dropped, never raising.
Time is a fake clock here (no timings asserted); the real effect is measured by
benchmarks/bench_latency.py on a real CPU run."""
from __future__ import annotations

import pytest

from rave_gui.backend import rave_launcher
from rave_gui.backend.rave_launcher import _flush_enabled, _Flusher


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Writer:
    def __init__(self, fail=False):
        self.flushes, self.fail = 0, fail

    def flush(self):
        if self.fail:
            raise OSError("disk full")
        self.flushes += 1


class Logger:
    def __init__(self, writer):
        self.experiment = writer
        self.logged = []

    def log_metrics(self, metrics, step=None):
        self.logged.append((step, metrics))


class Trainer:
    def __init__(self, *loggers):
        self.loggers = list(loggers)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(rave_launcher.time, "monotonic", clock)
    return clock


def test_flushes_after_a_logging_step_at_most_once_per_interval(clock):
    writer = Writer()
    logger = Logger(writer)
    trainer = Trainer(logger)
    flusher = _Flusher(interval=1.0)
    flusher.watch(trainer)
    logger.log_metrics({"loss": 1.0}, step=0)
    assert logger.logged == [(0, {"loss": 1.0})]  # the original still logs
    assert writer.flushes == 1
    clock.now += 0.3
    logger.log_metrics({"lr-Adam": 1e-3}, step=1)
    assert writer.flushes == 1  # too soon: held, not dropped
    flusher.maybe_flush(trainer)
    assert writer.flushes == 1
    clock.now += 0.8  # the next batch hook after the interval flushes what was held
    flusher.maybe_flush(trainer)
    assert writer.flushes == 2
    clock.now += 5
    flusher.maybe_flush(trainer)  # nothing logged since: no flush
    assert writer.flushes == 2
    flusher.maybe_flush(trainer, force=True)  # validation end: the audio bypasses log_metrics
    assert writer.flushes == 3


def test_wraps_each_logger_once(clock):
    logger = Logger(Writer())
    trainer = Trainer(logger)
    flusher = _Flusher()
    flusher.watch(trainer)
    flusher.watch(trainer)  # a second fit on the same trainer
    logger.log_metrics({"loss": 1.0}, step=0)
    assert len(logger.logged) == 1 and logger.experiment.flushes == 1


def test_a_failing_flush_never_breaks_the_training(clock):
    bad, good = Logger(Writer(fail=True)), Logger(Writer())
    trainer = Trainer(bad, good)
    flusher = _Flusher()
    flusher.watch(trainer)
    bad.log_metrics({"loss": 1.0}, step=0)  # raises inside: swallowed
    assert bad.logged == [(0, {"loss": 1.0})]
    clock.now += 2
    flusher.maybe_flush(Trainer(object()), force=True)  # a logger without experiment
    flusher.maybe_flush(None, force=True)  # not even a trainer


def test_disabled_leaves_the_loggers_alone(clock):
    logger = Logger(Writer())
    original = logger.log_metrics
    flusher = _Flusher(enabled=False)
    flusher.watch(Trainer(logger))
    assert logger.log_metrics == original
    flusher.maybe_flush(Trainer(logger), force=True)
    assert logger.experiment.flushes == 0


@pytest.mark.parametrize("value, enabled", [(None, True), ("1", True), ("0", False),
                                            ("off", False), ("false", False), ("yes", True)])
def test_rave_gui_flush_variable(monkeypatch, value, enabled):
    if value is None:
        monkeypatch.delenv("RAVE_GUI_FLUSH", raising=False)
    else:
        monkeypatch.setenv("RAVE_GUI_FLUSH", value)
    assert _flush_enabled() is enabled
