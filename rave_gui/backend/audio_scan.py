"""Finding and measuring the audio files ``rave preprocess`` will read.

RAVE 2.3.1 searches each input folder recursively for ``*.<ext>`` and
``*.<EXT>`` with the extensions below (so ``.Wav`` is not found) and reads
every file with ffmpeg. Durations come from soundfile when it can read the
header (fast, no child process) and from ffprobe otherwise.
"""
from __future__ import annotations

import math
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Iterable

from rave_gui.core.formatting import format_clock

try:  # comes with acids-rave (librosa); ffprobe is the fallback
    import soundfile as _soundfile
except Exception:  # pragma: no cover - depends on the environment
    _soundfile = None

RAVE_EXTENSIONS = ("aif", "aiff", "wav", "opus", "mp3", "aac", "flac", "ogg")
_SOUNDFILE_EXTENSIONS = {"wav", "flac", "ogg", "aif", "aiff"}
FFPROBE_TIMEOUT = 30


def rave_reads(path: Path) -> bool:
    """True when RAVE's search (``rglob('*.wav')``, ``rglob('*.WAV')``...) finds ``path``."""
    ext = path.suffix[1:]
    return ext in RAVE_EXTENSIONS or ext.lower() in RAVE_EXTENSIONS and ext == ext.upper()


def find_audio_files(folders: Iterable[Path]) -> list[Path]:
    """The files RAVE will read, in a stable order."""
    found: set[Path] = set()
    for folder in folders:
        for path in Path(folder).rglob("*"):
            if rave_reads(path) and path.is_file():
                found.add(path)
    return sorted(found)


def count_by_extension(paths: Iterable[Path]) -> dict[str, int]:
    counts = Counter(p.suffix.lower() or "(no extension)" for p in paths)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def format_counts(counts: dict[str, int]) -> str:
    """``{'.wav': 12, '.flac': 3}`` -> ``"12 .wav, 3 .flac"``."""
    return ", ".join(f"{n} {ext}" for ext, n in counts.items())


def format_seconds(seconds: float | None) -> str:
    """h:mm:ss rounded to the second (``core.formatting.format_clock``)."""
    return format_clock(round(seconds or 0))


def audio_duration(path: Path) -> float | None:
    """Length in seconds, or None when neither soundfile nor ffprobe can read it."""
    if _soundfile is not None and path.suffix[1:].lower() in _SOUNDFILE_EXTENSIONS:
        try:
            info = _soundfile.info(str(path))
            if info.samplerate > 0 and info.frames > 0:
                return info.frames / info.samplerate
        except Exception:  # noqa: BLE001 - soundfile raises several kinds; ask ffprobe
            pass
    return ffprobe_duration(path)


def ffprobe_duration(path: Path) -> float | None:
    """Duration the way RAVE asks for it, and only if ffprobe also finds an audio stream."""
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    argv = [exe, "-v", "error", "-select_streams", "a:0", "-show_entries",
            "stream=channels:format=duration", "-of", "default=noprint_wrappers=1", str(path)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=FFPROBE_TIMEOUT,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    values = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    try:
        if int(values.get("channels", "0")) < 1:
            return None
        seconds = float(values["duration"])
    except (KeyError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None  # "inf" parses too
