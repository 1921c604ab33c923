"""Start-up: arguments, data directory, database, QApplication, MainWindow."""
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # --help and --version exit here, without a display
    from PyQt6.QtWidgets import QApplication, QMessageBox

    from rave_gui.core import paths
    from rave_gui.core.database import Database, DatabaseError

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("RAVE GUI")
    try:
        root = paths.data_dir(args.data_dir)
        db = Database(paths.database_path(root))
    except (DatabaseError, paths.DataDirError) as exc:
        print(f"rave-gui: {exc}", file=sys.stderr)
        if app.platformName() not in ("offscreen", "minimal"):  # nobody could see (or close) it
            QMessageBox.critical(None, "RAVE GUI", str(exc))
        return 2
    from rave_gui.main_window import MainWindow
    window = MainWindow(db)
    window.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
