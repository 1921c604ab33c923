"""From folders of audio to a preprocessed RAVE dataset (``rave preprocess``).

``check_preprocess_inputs`` looks at everything RAVE 2.3.1 would stumble on
(missing ffmpeg, no readable audio, a used output folder, a full disk) and
returns a :class:`PreprocessPlan`; :class:`PreprocessProcess` runs the CLI,
reports progress and registers the result. What RAVE does, measured:

* it cuts every file into examples of ``2 * num_signal`` samples and drops the
  rest, so a file shorter than one example adds nothing;
* ``n_seconds`` in ``metadata.yaml`` is ``example length * index of the last
  example``: one example gives 0 and the dataset is refused by training;
* without ffmpeg/ffprobe, or with one unreadable file, a worker fails, RAVE
  prints the exception as ``(TypeError(...),)`` and then waits forever;
  with no audio it prints ``No valid file found`` and waits forever too;
* ``--lazy`` asks "Continue ? (y/n)" on stdin (even on Linux).
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rave_gui.backend.audio_scan import (RAVE_EXTENSIONS, audio_duration, count_by_extension,
                                         find_audio_files, format_counts, format_seconds)

DEFAULT_NUM_SIGNAL = 131072
CHANNEL_CHOICES = (1, 2)
BYTES_PER_SAMPLE = 2  # RAVE stores int16
DISK_MARGIN = 1.2
DEFAULT_MAX_DB_GB = 100
INSTALL_FFMPEG = ("Install ffmpeg (`sudo apt install ffmpeg` on Debian/Ubuntu, "
                  "`brew install ffmpeg` on macOS), then try again.")


@dataclass
class PreprocessPlan:
    """What ``rave preprocess`` will be asked to do, and what it should produce."""
    audio_dirs: list[Path]
    output_dir: Path
    channels: int = 1
    sample_rate: int = 44100
    num_signal: int | None = None
    lazy: bool = False
    files: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    total_seconds: float = 0.0
    examples: int = 0
    short_files: int = 0
    expected_seconds: float = 0.0   # what metadata.yaml's n_seconds should say
    estimated_bytes: int = 0

    @property
    def example_seconds(self) -> float:
        return 2 * (self.num_signal or DEFAULT_NUM_SIGNAL) / self.sample_rate

    def summary(self) -> str:
        text = f"{format_counts(self.counts)}: {format_seconds(self.total_seconds)} of audio"
        if not self.lazy:
            text += f", {self.examples} examples of {self.example_seconds:.1f} s"
            if self.short_files:
                text += (f" ({self.short_files} file(s) shorter than one example "
                         "will be left out)")
        return text + "."

    def max_db_gb(self) -> int | None:
        """``--max_db_size`` when RAVE's default (100 GB) is too small."""
        needed = math.ceil(self.estimated_bytes * 1.25 / 1024 ** 3)
        return needed if needed > DEFAULT_MAX_DB_GB else None


def check_tools() -> None:
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise ValueError(
            f"RAVE reads audio with ffmpeg and ffprobe, and {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed (without them RAVE writes "
            f"an empty dataset or stops responding). {INSTALL_FFMPEG}")


def _resolve(path, what: str) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"The {what} {path} cannot be used ({reason}). Choose another folder.") from exc


def _check_folders(audio_dirs) -> list[Path]:
    folders = [_resolve(d, "audio folder") for d in audio_dirs or []]
    if not folders:
        raise ValueError("Add at least one folder of audio files.")
    for folder in folders:
        if not folder.is_dir():
            raise ValueError(f"The audio folder {folder} does not exist. Choose an existing folder.")
    for a in folders:
        for b in folders:
            if a != b and a.is_relative_to(b):
                raise ValueError(f"{a} is inside {b}, so its files would be used twice. "
                                 "Remove one of the two folders.")
    if len(set(folders)) != len(folders):
        raise ValueError("The same audio folder is listed twice. Remove one of them.")
    return folders


def _check_output(output_dir) -> Path:
    if not str(output_dir or "").strip():
        raise ValueError("Choose the folder where the dataset will be written.")
    out = _resolve(output_dir, "output folder")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file. Choose a new folder for the dataset.")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"The output folder {out} is not empty. Choose a new or empty folder "
                         "(RAVE would mix the dataset with what is there).")
    _check_writable(out)
    return out


def _whole(value, label: str) -> int:
    """``value`` as an int when it is a whole number (not a bool); ``ValueError`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{label} must be a whole number (got {value!r}).")


def _check_options(channels, sample_rate, num_signal) -> None:
    channels, sample_rate = _whole(channels, "Channels"), _whole(sample_rate, "The sample rate")
    if num_signal is not None:
        num_signal = _whole(num_signal, "num_signal")
    if channels not in CHANNEL_CHOICES:
        raise ValueError("Choose 1 (mono) or 2 (stereo) channels.")
    if sample_rate < 8000:
        raise ValueError(f"A sample rate of {sample_rate} Hz is too low. Choose 44100 Hz "
                         "unless you know you need another rate.")
    if num_signal is not None and num_signal < 2048:
        raise ValueError(f"num_signal {num_signal} is too small: use at least 2048 samples "
                         f"(RAVE's default is {DEFAULT_NUM_SIGNAL}).")


def _existing_ancestor(path: Path) -> Path:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(_existing_ancestor(path)).free


def _check_writable(out: Path) -> None:
    """A read-only place (a read-only disk, /proc, no permission) is said as such,
    not as a disk with "0.0 GB" free."""
    import tempfile
    try:
        with tempfile.TemporaryFile(dir=_existing_ancestor(out)):
            pass
    except OSError as exc:
        raise ValueError(f"The output folder {out} cannot be written ({exc.strerror or exc}). "
                         "Choose a folder you can write to.") from exc


def _size(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{max(1, round(n / 1e6))} MB"


def check_preprocess_inputs(audio_dirs, output_dir, channels: int = 1, sample_rate: int = 44100,
                            num_signal: int | None = None, lazy: bool = False) -> PreprocessPlan:
    """Everything that would make ``rave preprocess`` fail or write an empty dataset.

    Raises ``ValueError`` with a sentence that says what to do; returns the plan
    (files, audio duration, expected examples and size) otherwise."""
    try:
        return _plan(audio_dirs, output_dir, channels, sample_rate, num_signal, lazy)
    except OSError as exc:  # a folder that cannot be listed, a disk that cannot be asked
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        raise ValueError(f"Could not read{where} ({exc.strerror or exc}). Check that the audio and "
                         "output folders exist and that you may read them, then try again.") from exc


def _plan(audio_dirs, output_dir, channels, sample_rate, num_signal, lazy) -> PreprocessPlan:
    check_tools()
    _check_options(channels, sample_rate, num_signal)
    folders = _check_folders(audio_dirs)
    out = _check_output(output_dir)
    for folder in folders:
        if out == folder or out.is_relative_to(folder):
            raise ValueError(f"The output folder {out} is inside the audio folder {folder}. "
                             "Choose an output folder outside the audio.")
    plan = PreprocessPlan(folders, out, int(channels), int(sample_rate),
                          int(num_signal) if num_signal else None, bool(lazy))
    plan.files = find_audio_files(folders)
    if not plan.files:
        others = count_by_extension(p for f in folders for p in f.rglob("*") if p.is_file())
        found = f" It holds {format_counts(others)}." if others else " It is empty."
        raise ValueError(
            f"No audio RAVE can read in {', '.join(str(f) for f in folders)}: it looks for "
            f"{', '.join('.' + e for e in RAVE_EXTENSIONS)} files, in subfolders too.{found} "
            "Add audio files or choose another folder.")
    plan.counts = count_by_extension(plan.files)
    example = 2 * (plan.num_signal or DEFAULT_NUM_SIGNAL)
    unreadable = []
    for path in plan.files:
        seconds = audio_duration(path)
        if seconds is None:
            unreadable.append(path)
            continue
        plan.total_seconds += seconds
        chunks = int(seconds * plan.sample_rate) // example
        plan.examples += chunks
        plan.short_files += chunks == 0
    if unreadable:
        raise ValueError(
            f"{len(unreadable)} file(s) could not be read as audio, for example {unreadable[0]}. "
            "RAVE stops responding on such files: remove or convert them, then try again.")
    if lazy:
        plan.expected_seconds = plan.total_seconds
    else:
        if plan.examples < 2:
            raise ValueError(
                f"The audio is too short: RAVE cuts it into examples of {plan.example_seconds:.1f} s "
                f"and needs at least 2, but {format_seconds(plan.total_seconds)} of audio makes "
                f"{plan.examples}. Add more audio (files longer than {plan.example_seconds:.1f} s).")
        plan.expected_seconds = plan.example_seconds * (plan.examples - 1)
    seconds = plan.total_seconds if not lazy else 0.0
    plan.estimated_bytes = int(seconds * plan.sample_rate * plan.channels * BYTES_PER_SAMPLE
                               * DISK_MARGIN) + 1024 * len(plan.files)
    free = _free_bytes(out)
    if plan.estimated_bytes > free:
        raise ValueError(
            f"The dataset needs about {_size(plan.estimated_bytes)} but only "
            f"{_size(free)} is free where {out} would be. Free some space or choose "
            "an output folder on another disk.")
    return plan


def preprocess_arguments(plan: PreprocessPlan) -> list[str]:
    """Arguments after ``rave preprocess`` for a checked plan."""
    args: list[str] = []
    for folder in plan.audio_dirs:
        args += ["--input_path", str(folder)]
    args += ["--output_path", str(plan.output_dir), "--channels", str(plan.channels),
             "--sampling_rate", str(plan.sample_rate)]
    if plan.num_signal:
        args += ["--num_signal", str(plan.num_signal)]
    if plan.max_db_gb():
        args += ["--max_db_size", str(plan.max_db_gb())]
    if plan.lazy:
        args.append("--lazy")
    return args


# RAVE's --lazy asks "Continue ? (y/n)" on stdin; the person already said yes in the app.
LAZY_ANSWER = ("import io, runpy, sys; path = sys.argv[1]; sys.argv = ['rave'] + sys.argv[2:]; "
               "sys.stdin = io.StringIO('y\\n'); runpy.run_path(path, run_name='__main__')")


def preprocess_command(rave: Path, plan: PreprocessPlan) -> list[str]:
    args = ["preprocess", *preprocess_arguments(plan)]
    if plan.lazy:
        from rave_gui.backend.rave_cli import interpreter_for
        return [interpreter_for(rave), "-c", LAZY_ANSWER, str(rave), *args]
    return [str(rave), *args]


def __getattr__(name: str):
    """``PreprocessProcess`` (a QThread) is imported on first use, so the checks stay Qt-free."""
    if name == "PreprocessProcess":
        from rave_gui.backend.preprocess_process import PreprocessProcess
        return PreprocessProcess
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
