"""The app's one clock for records: local time, ISO 8601, to the second."""
from __future__ import annotations

import datetime as _dt


def now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")
