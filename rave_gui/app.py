"""Start-up: arguments, data directory, the one-window lock, database (offering a
backup when it is damaged), crash guard, QApplication, MainWindow.

Exit codes: 2 when the data folder or its database cannot be used, 3 when another
RAVE GUI already has the data folder open; the sentence goes to stderr, and to a
message box when there is a screen to show it on."""
from __future__ import annotations

import argparse
import sys

from rave_gui import __version__


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rave-gui",
        description="Train RAVE models from a desktop window: datasets, live loss curves, "
                    "stop, resume and export.")
    parser.add_argument("--version", action="version", version=f"rave-gui {__version__}")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where the database and runs live (default: the user data directory, "
                             "or $RAVE_GUI_DATA_DIR)")
    return parser.parse_args(argv)


EXIT_UNUSABLE_DATA = 2   # the data folder or its database cannot be used
EXIT_ALREADY_OPEN = 3    # another RAVE GUI has this data folder
LOCK_NAME = "rave-gui.lock"


def lock_data_dir(root):
    """Hold ``<root>/rave-gui.lock`` while the app runs (two windows on one database
    would fight over its runs). Returns the held ``QLockFile``, or the sentence that
    says why not. A lock left by a crashed app (its process is gone) is taken over."""
    from PyQt6.QtCore import QLockFile

    lock = QLockFile(str(root / LOCK_NAME))
    lock.setStaleLockTime(0)  # never stale by age: a long training keeps it for days
    if lock.tryLock(100):
        return lock
    if lock.error() == QLockFile.LockError.LockFailedError:
        ok, pid, _host, _app = lock.getLockInfo()
        owner = f" (process {pid})" if ok else ""
        return (f"RAVE GUI is already open with the data folder {root}{owner}. Switch to that "
                "window, or start this one with another --data-dir.")
    return (f"RAVE GUI could not lock its data folder {root} (it cannot write "
            f"{LOCK_NAME} there). Fix the folder's permissions, or start with another --data-dir.")


def open_database(path, ask_to_restore):
    """The database at ``path``; when it is damaged and a backup exists,
    ``ask_to_restore(message)`` may say yes, and the backup is put in its place."""
    from rave_gui.core.database import Database, DatabaseDamaged, restore_backup

    try:
        return Database(path)
    except DatabaseDamaged as exc:
        if exc.backup is None or not ask_to_restore(str(exc)):
            raise
        restore_backup(path)
        return Database(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # --help and --version exit here, without a display
    from PyQt6.QtWidgets import QApplication, QMessageBox

    from rave_gui.core import crash_guard, paths
    from rave_gui.core.database import DatabaseError

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("RAVE GUI")
    from rave_gui.ui.theme import follow_system_theme
    follow_system_theme(app)
    seen = app.platformName() not in ("offscreen", "minimal")  # else nobody could see (or close) a box

    def refuse(message: str, code: int) -> int:
        print(f"rave-gui: {message}", file=sys.stderr)
        if seen:
            QMessageBox.critical(None, "RAVE GUI", message)
        return code

    def ask_to_restore(message: str) -> bool:
        if not seen:
            return False
        answer = QMessageBox.question(
            None, "RAVE GUI", f"{message}\n\nRestore the backup now? The damaged file is kept "
            "next to it, renamed.", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    try:
        root = paths.data_dir(args.data_dir)
    except paths.DataDirError as exc:
        return refuse(str(exc), EXIT_UNUSABLE_DATA)
    lock = lock_data_dir(root)
    if isinstance(lock, str):
        return refuse(lock, EXIT_ALREADY_OPEN)
    try:
        try:
            db = open_database(paths.database_path(root), ask_to_restore)
        except DatabaseError as exc:
            return refuse(str(exc), EXIT_UNUSABLE_DATA)
        from rave_gui.main_window import MainWindow
        from rave_gui.ui.error_notice import ErrorNotice
        notice = ErrorNotice(app)
        guard = crash_guard.install(root / "logs", notice.notify)
        window = MainWindow(db)
        notice.window = window
        window.show()
        try:
            return app.exec()
        finally:
            guard.uninstall()
    finally:
        lock.unlock()


if __name__ == "__main__":
    raise SystemExit(main())
