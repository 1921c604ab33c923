"""Where the app keeps its files: the user's data directory, or one chosen.

Order: an explicit ``--data-dir``, then ``RAVE_GUI_DATA_DIR``, then the
platform convention (``~/.local/share/rave-gui`` on Linux, ``~/Library/
Application Support/rave-gui`` on macOS, ``%LOCALAPPDATA%\\rave-gui`` on
Windows) through platformdirs.
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "rave-gui"
ENV_DATA_DIR = "RAVE_GUI_DATA_DIR"
DB_FILENAME = "rave_gui.sqlite3"


class DataDirError(OSError):
    """The data folder cannot be created or is not a folder; the message says what to do."""


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Return (and create) the directory that holds the database and runs."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get(ENV_DATA_DIR):
        path = Path(os.environ[ENV_DATA_DIR])
    else:
        path = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    path = path.expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(
            f"The data folder {path} cannot be used ({exc.strerror or exc}). Choose another "
            f"with --data-dir or {ENV_DATA_DIR}, or fix its permissions."
        ) from exc
    return path


def database_path(root: Path) -> Path:
    return Path(root) / DB_FILENAME


def runs_dir(root: Path) -> Path:
    """Folder under which every experiment gets its own output folder."""
    return Path(root) / "runs"
