"""Where the app keeps its files: the user's data directory, or one chosen.

Order: an explicit ``--data-dir``, then ``RAVE_GUI_DATA_DIR``, then the
platform convention (``~/.local/share/rave-gui`` on Linux, ``~/Library/
Application Support/rave-gui`` on macOS, ``%LOCALAPPDATA%\\rave-gui`` on
Windows) through platformdirs.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import platformdirs

APP_NAME = "rave-gui"
ENV_DATA_DIR = "RAVE_GUI_DATA_DIR"
DB_FILENAME = "rave_gui.sqlite3"


class DataDirError(OSError):
    """The data folder cannot be created, is not a folder, or cannot be written;
    the message says what to do."""


def _unusable(path, why: str, exc: BaseException) -> DataDirError:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return DataDirError(
        f"The data folder {path} {why} ({reason}). Choose another with --data-dir or "
        f"{ENV_DATA_DIR}, or fix its permissions.")


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Return (and create) the directory that holds the database and runs, after
    checking that a file can be written in it."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get(ENV_DATA_DIR):
        path = Path(os.environ[ENV_DATA_DIR])
    else:
        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    try:
        path = path.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
        raise _unusable(path, "cannot be used", exc) from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=".rave-gui-write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _unusable(path, "cannot be written", exc) from exc
    return path


def database_path(root: Path) -> Path:
    return Path(root) / DB_FILENAME


def runs_dir(root: Path) -> Path:
    """Folder under which every experiment gets its own output folder."""
    return Path(root) / "runs"
