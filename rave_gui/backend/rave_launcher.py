"""Run RAVE's own ``rave`` entry point with three Lightning callbacks added.

Usage: ``python rave_launcher.py train <the usual rave train flags>``.

RAVE's training code runs unchanged: this script installs callbacks into
``pytorch_lightning.Trainer`` and then calls ``scripts.main_cli.main`` exactly
as the ``rave`` console script does. The callbacks:

* **Stop checkpoint.** The first SIGINT does not tear the run down mid-step:
  it sets a flag; at the end of the current training batch the callback writes
  ``version_N/checkpoints/stopped-step=N.ckpt`` (a full Lightning checkpoint,
  optimizers included) and asks the trainer to stop; Lightning then ends the
  fit normally. RAVE itself saves only at validation, so without this a stop
  loses everything since the last validation. A second SIGINT interrupts at
  once, as plain ``rave train`` does.
* **Step lines.** ``[rave-gui:TOKEN] step=N/M`` on stdout (at most every 0.5 s, and
  at the end), so the app knows the global step without waiting for the
  TensorBoard writer's late flushes, plus the run folder and checkpoint paths.
* **Logging interval.** ``RAVE_GUI_LOG_EVERY=N`` sets Lightning's
  ``log_every_n_steps`` (default 50): how often the losses reach the event file.
* **Checkpoint index.** Every checkpoint saved is noted with its step and
  validation loss in ``checkpoints/rave-gui-index.jsonl``.
* **Learning rate.** Lightning's ``LearningRateMonitor`` logs the optimizers'
  real learning rates (``lr-Adam``: RAVE's generator schedule) to the event
  file, so the plot shows the schedule RAVE really follows.
* **Live flush.** TensorBoard's writer flushes its file every 120 s: where
  TensorFlow is installed (its buffered ``tf.io.gfile``) the losses would reach
  the app up to two minutes late (without TensorFlow, tensorboard's stand-in
  appends each record at once: see ``benchmarks/bench_latency.py``).
  Each logger's ``log_metrics`` is wrapped: after every write (a logging step,
  the learning rate, a validation; Lightning 1.9 writes a step's losses *after*
  the ``on_train_batch_end`` hooks) and at each batch start/end and validation
  end, the writer is flushed if something was logged since the last flush and
  at least ``FLUSH_INTERVAL_S`` (1 s) has passed: at most one flush a second,
  and nothing logged waits longer than that or one step. A failing flush is
  ignored (it never stops the training). ``RAVE_GUI_FLUSH=0`` turns it off.

Every line the launcher prints starts with ``[rave-gui:TOKEN]``, where TOKEN is
``RAVE_GUI_TOKEN`` (a random value the app makes for each launch): the app
trusts only lines with its token, so a run name or anything RAVE prints that
looks like ``[rave-gui] step=...`` cannot move the step. Without the variable
the prefix is ``[rave-gui]``.

Kept free of rave_gui imports: it runs in the interpreter that owns ``rave``.
"""
from __future__ import annotations

import os
import signal
import sys
import time

_STATE = {"stop": False, "trainer": None}
FLUSH_INTERVAL_S = 1.0
_TOKEN = os.environ.get("RAVE_GUI_TOKEN", "")
_PREFIX = f"[rave-gui:{_TOKEN}]" if _TOKEN.isalnum() else "[rave-gui]"


def _say(text: str) -> None:
    print(f"{_PREFIX} {text}", flush=True)


def _on_sigint(signum, frame):
    if _STATE["trainer"] is None or _STATE["stop"]:
        raise KeyboardInterrupt  # not training yet, or asked twice: plain behaviour
    _STATE["stop"] = True
    _say("stop requested: saving a checkpoint at the end of this step")


class _Flusher:
    """Flushes the loggers' writers when something was logged since the last
    flush and at least ``interval`` seconds have passed. Never raises."""

    def __init__(self, interval: float = FLUSH_INTERVAL_S, enabled: bool = True):
        self.interval, self.enabled = interval, enabled
        self.dirty = False
        self.last = float("-inf")
        self.flushes = 0

    def watch(self, trainer) -> None:
        """Wrap each logger's ``log_metrics`` so that a write marks it dirty and
        flushes at once when the interval allows."""
        if not self.enabled:
            return
        try:
            for logger in trainer.loggers:
                if getattr(logger, "_rave_gui_flush", False):
                    continue
                original = logger.log_metrics

                def log_metrics(*args, _original=original, **kwargs):
                    result = _original(*args, **kwargs)
                    self.dirty = True
                    self.maybe_flush(trainer)
                    return result

                logger.log_metrics = log_metrics
                logger._rave_gui_flush = True
        except Exception:  # noqa: BLE001 - flushing is a nicety, the training is not
            pass

    def maybe_flush(self, trainer, force: bool = False) -> None:
        if not self.enabled:
            return
        try:
            if force:
                self.dirty = True
            now = time.monotonic()
            if not self.dirty or now - self.last < self.interval:
                return
            self.dirty = False
            self.last = now
            for logger in trainer.loggers:
                flush = getattr(getattr(logger, "experiment", None), "flush", None)
                if callable(flush):
                    flush()
            self.flushes += 1
        except Exception:  # noqa: BLE001
            pass


def _flush_enabled() -> bool:
    return os.environ.get("RAVE_GUI_FLUSH", "1").strip().lower() not in ("0", "no", "false", "off")


def _install_callbacks() -> None:
    import pytorch_lightning as pl

    flusher = _Flusher(enabled=_flush_enabled())

    class RaveGuiCallback(pl.Callback):
        def __init__(self):
            self._last = 0.0

        def on_fit_start(self, trainer, pl_module):
            _STATE["trainer"] = trainer
            _say(f"run_dir={trainer.logger.log_dir}")
            flusher.watch(trainer)

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            flusher.maybe_flush(trainer)  # what the previous step logged, if the interval held it

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = trainer.global_step
            now = time.monotonic()
            if now - self._last >= 0.5 or step >= (trainer.max_steps or 0):
                self._last = now
                _say(f"step={step}/{trainer.max_steps}")
            flusher.maybe_flush(trainer)
            self._stop_if_asked(trainer)

        def on_validation_end(self, trainer, pl_module):
            # the validation audio goes straight to the writer, not through log_metrics
            flusher.maybe_flush(trainer, force=True)
            self._stop_if_asked(trainer)  # a stop asked during a validation

        @staticmethod
        def _stop_if_asked(trainer):
            if not _STATE["stop"] or trainer.should_stop or trainer.sanity_checking:
                return
            step = trainer.global_step
            path = os.path.join(trainer.logger.log_dir, "checkpoints", f"stopped-step={step}.ckpt")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            trainer.save_checkpoint(path)
            _say(f"checkpoint={path} step={step}")
            trainer.should_stop = True

        def on_fit_end(self, trainer, pl_module):
            _say(f"step={trainer.global_step}/{trainer.max_steps}")

    original_init = pl.Trainer.__init__
    original_save = pl.Trainer.save_checkpoint

    def patched_save(self, filepath, *args, **kwargs):
        original_save(self, filepath, *args, **kwargs)
        _index_checkpoint(self, str(filepath))

    pl.Trainer.save_checkpoint = patched_save

    def patched_init(self, *args, **kwargs):
        callbacks = list(kwargs.get("callbacks") or [])
        callbacks += [RaveGuiCallback(), pl.callbacks.LearningRateMonitor(logging_interval="step")]
        kwargs["callbacks"] = callbacks
        log_every = os.environ.get("RAVE_GUI_LOG_EVERY")
        if log_every and log_every.isdigit() and int(log_every) > 0:
            kwargs["log_every_n_steps"] = int(log_every)  # Lightning's default is 50
        original_init(self, *args, **kwargs)

    pl.Trainer.__init__ = patched_init


def _index_checkpoint(trainer, path: str) -> None:
    """Note the step and validation loss of a saved checkpoint next to it
    (``rave-gui-index.jsonl``): the app lists checkpoints without torch."""
    import json
    val = trainer.callback_metrics.get("validation")
    record = {"file": os.path.basename(path), "step": int(trainer.global_step),
              "validation": float(val) if val is not None else None, "time": time.time()}
    try:
        with open(os.path.join(os.path.dirname(path), "rave-gui-index.jsonl"), "a") as fh:
            fh.write(json.dumps(record) + "\n")
    except OSError:
        pass
    _say(f"saved {os.path.basename(path)} at step={record['step']}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "train":
        signal.signal(signal.SIGINT, _on_sigint)
        _install_callbacks()
    sys.argv[0] = "rave"
    from scripts.main_cli import main as rave_main
    rave_main()


if __name__ == "__main__":
    main()
