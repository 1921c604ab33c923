"""The system monitor's sampler: CPU, memory, free disk of the data folder, and
per NVIDIA GPU its utilisation, memory and temperature (NVIDIA's management
library through ``nvidia-ml-py``), plus the GPU memory each run's process uses.

Plain Python: ``sample()`` is called from a worker thread (``SystemMonitor`` in
the UI runs it every 2 s); ``format_summary`` makes the status-bar line and
``describe_run_gpu_memory`` a run's line. ``gpu_memory_totals`` reads each GPU's
total memory once (the wizard's minimum-memory warning).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import psutil

NO_GPU = "No NVIDIA GPU on this computer (RAVE trains on the CPU here, slowly)."


@dataclass
class GPUSample:
    index: int
    name: str
    utilisation: float | None       # percent
    memory_used: int                # bytes
    memory_total: int
    temperature: float | None       # °C
    processes: dict[int, int] = field(default_factory=dict)  # pid -> bytes of GPU memory


@dataclass
class Sample:
    cpu_percent: float
    memory_used: int
    memory_total: int
    disk_free: int | None
    gpus: list[GPUSample]
    gpu_note: str = ""               # why there is no GPU figure
    #: per run asked for (``sample(runs=...)``): experiment id -> {GPU index: bytes its processes use}
    runs: dict[int, dict[int, int]] = field(default_factory=dict)


class NVML:
    """NVIDIA's library, opened once; ``available`` False (with ``reason``) where it is missing."""

    def __init__(self, module=None):
        self.available, self.reason, self._nvml = False, NO_GPU, None
        try:
            if module is None:
                import pynvml as module
            module.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - no library, no driver, no GPU: all the same here
            self.reason = NO_GPU if "NVML" in type(exc).__name__ or "nvml" in str(exc).lower() else (
                f"{NO_GPU} ({exc})")
            return
        self._nvml, self.available = module, True

    def memory_totals(self) -> list[int]:
        """Each GPU's total memory (bytes), in NVML's order (nvidia-smi's)."""
        nv = self._nvml
        return [int(nv.nvmlDeviceGetMemoryInfo(nv.nvmlDeviceGetHandleByIndex(index)).total)
                for index in range(nv.nvmlDeviceGetCount())]

    def gpus(self) -> list[GPUSample]:
        nv = self._nvml
        found = []
        for index in range(nv.nvmlDeviceGetCount()):
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            name = nv.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            memory = nv.nvmlDeviceGetMemoryInfo(handle)
            try:
                utilisation = float(nv.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception:  # noqa: BLE001 - some boards do not report it
                utilisation = None
            try:
                temperature = float(nv.nvmlDeviceGetTemperature(handle, nv.NVML_TEMPERATURE_GPU))
            except Exception:  # noqa: BLE001
                temperature = None
            processes = {}
            try:
                for proc in nv.nvmlDeviceGetComputeRunningProcesses(handle):
                    processes[int(proc.pid)] = int(proc.usedGpuMemory or 0)
            except Exception:  # noqa: BLE001
                pass
            found.append(GPUSample(index, name, utilisation, int(memory.used), int(memory.total),
                                   temperature, processes))
        return found


def sample(data_dir: str | Path | None, nvml: NVML | None, runs: dict[int, list[int]] | None = None) -> Sample:
    """One reading of the machine; ``runs`` (experiment id -> the pids of its process on this
    computer) adds the GPU memory each run uses, when there is a GPU to read."""
    memory = psutil.virtual_memory()
    try:
        disk = shutil.disk_usage(data_dir).free if data_dir else None
    except OSError:
        disk = None
    gpus, note = [], ""
    if nvml is not None and nvml.available:
        try:
            gpus = nvml.gpus()
        except Exception as exc:  # noqa: BLE001 - a driver hiccup: say it, keep sampling
            note = f"The GPU could not be read ({exc})."
    else:
        note = nvml.reason if nvml is not None else NO_GPU
    s = Sample(psutil.cpu_percent(interval=None), int(memory.used), int(memory.total), disk, gpus, note)
    if gpus:
        s.runs = {exp_id: run_gpu_usage(s, pids) for exp_id, pids in (runs or {}).items()}
    return s


def gpu_memory_totals(nvml: NVML | None = None) -> list[int]:
    """Each NVIDIA GPU's total memory (bytes), in nvidia-smi's order; [] without one
    (or when the driver does not answer)."""
    nvml = NVML() if nvml is None else nvml
    if not nvml.available:
        return []
    try:
        return nvml.memory_totals()
    except Exception:  # noqa: BLE001 - a driver hiccup: no figure, no warning
        return []


def _family(pids: list[int]) -> set[int]:
    """The pids and all their children (a run's launcher, RAVE, its data loaders)."""
    family = set(pids)
    for pid in pids:
        try:
            family.update(child.pid for child in psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            pass
    return family


def run_gpu_usage(s: Sample, pids: list[int]) -> dict[int, int]:
    """GPU memory used by a run's process and its children, per GPU index (bytes);
    only the GPUs where it uses some."""
    family = _family(pids)
    usage = {}
    for gpu in s.gpus:
        used = sum(n for pid, n in gpu.processes.items() if pid in family)
        if used:
            usage[gpu.index] = used
    return usage


def run_gpu_memory(s: Sample, pids: list[int]) -> int:
    """GPU memory used by a run's process and its children (bytes)."""
    return sum(run_gpu_usage(s, pids).values())


def describe_run_gpu_memory(s: Sample | None, experiment_id: int) -> str:
    """What a run's process holds on the GPUs, e.g. "3.0 GB on GPU 1 (of 80.0 GB)";
    '' when there is nothing true to say: no sample yet, no NVIDIA GPU on this
    computer, or the run was not sampled (not live here: on another machine)."""
    if s is None or not s.gpus or experiment_id not in s.runs:
        return ""
    usage = s.runs[experiment_id]
    if not usage:
        return "none (the NVIDIA driver lists no GPU memory for its process)"
    totals = {gpu.index: gpu.memory_total for gpu in s.gpus}
    return ", ".join(f"{_gb(used)} GB on GPU {index} (of {_gb(totals.get(index))} GB)"
                     for index, used in sorted(usage.items()))


def _gb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e9:.1f}"


def format_summary(s: Sample) -> str:
    parts = [f"CPU {s.cpu_percent:.0f}%", f"RAM {_gb(s.memory_used)}/{_gb(s.memory_total)} GB"]
    if s.disk_free is not None:
        parts.append(f"disk {_gb(s.disk_free)} GB free")
    for gpu in s.gpus:
        util = "?" if gpu.utilisation is None else f"{gpu.utilisation:.0f}%"
        temp = "" if gpu.temperature is None else f" {gpu.temperature:.0f}°C"
        parts.append(f"GPU{gpu.index} {util} {_gb(gpu.memory_used)}/{_gb(gpu.memory_total)} GB{temp}")
    if not s.gpus:
        parts.append("no NVIDIA GPU")
    return " · ".join(parts)
