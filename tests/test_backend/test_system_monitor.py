"""The system monitor's sampler: the real psutil, and a stand-in for NVIDIA's library."""
from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

from rave_gui.backend.system_monitor import NO_GPU, NVML, format_summary, run_gpu_memory, sample


class FakeNVML:
    """What nvidia-ml-py offers, for two GPUs; this process 'uses' 3 GB on GPU 1."""
    NVML_TEMPERATURE_GPU = 0

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return 2

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H200" if handle == 0 else "NVIDIA A100"

    def nvmlDeviceGetMemoryInfo(self, handle):
        return SimpleNamespace(used=(handle + 1) * 10**10, total=8 * 10**10)

    def nvmlDeviceGetUtilizationRates(self, handle):
        if handle == 1:
            raise RuntimeError("not supported")
        return SimpleNamespace(gpu=87)

    def nvmlDeviceGetTemperature(self, handle, kind):
        return 61

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        return [SimpleNamespace(pid=os.getpid(), usedGpuMemory=3 * 10**9)] if handle == 1 else []


class BrokenNVML(FakeNVML):
    def nvmlInit(self):
        raise OSError("NVML Shared Library Not Found")


def test_sample_reads_the_machine_and_the_gpus(tmp_path):
    s = sample(tmp_path, NVML(FakeNVML()))
    assert 0 <= s.cpu_percent <= 100 * os.cpu_count()
    assert 0 < s.memory_used < s.memory_total and s.disk_free > 0
    assert [(g.index, g.name, g.utilisation, g.temperature) for g in s.gpus] == [
        (0, "NVIDIA H200", 87.0, 61.0), (1, "NVIDIA A100", None, 61.0)]
    assert run_gpu_memory(s, [os.getpid()]) == 3 * 10**9
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert run_gpu_memory(s, [other.pid]) == 0  # another process uses none
    finally:
        other.kill()
        other.wait()
    line = format_summary(s)
    assert "GPU0 87% 10.0/80.0 GB 61°C" in line and "GPU1 ? 20.0/80.0 GB" in line and line.startswith("CPU ")


def test_without_nvidia_it_says_so(tmp_path):
    nvml = NVML(BrokenNVML())
    assert not nvml.available and nvml.reason == NO_GPU
    s = sample(tmp_path, nvml)
    assert s.gpus == [] and s.gpu_note == NO_GPU
    assert format_summary(s).endswith("no NVIDIA GPU")


def test_the_real_library_on_this_machine_never_raises(tmp_path):
    nvml = NVML()  # the real nvidia-ml-py: here, most likely no driver
    s = sample(tmp_path, nvml)
    assert (s.gpus and nvml.available) or (s.gpus == [] and s.gpu_note)
