"""What the Qt/matplotlib benchmarks record about the machine they ran on."""
from __future__ import annotations

import os
import platform

import matplotlib
import numpy as np


def environment() -> dict:
    return {"python": platform.python_version(), "matplotlib": matplotlib.__version__,
            "numpy": np.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
            "qpa": os.environ.get("QT_QPA_PLATFORM")}
