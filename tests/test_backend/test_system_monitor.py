"""The system monitor's sampler: the real psutil, and a stand-in for NVIDIA's library."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from types import SimpleNamespace

from rave_gui.backend.system_monitor import (
    NO_GPU, NVML, describe_run_gpu_memory, format_summary, gpu_memory_totals, run_gpu_memory, run_gpu_usage,
    sample,
)


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


class FamilyNVML(FakeNVML):
    """GPU 0 lists RAVE (a child of a run's launcher, 3 GB) and a stranger (5 GB); GPU 1 the launcher (1 GB)."""

    def __init__(self, launcher_pid: int, rave_pid: int, stranger_pid: int):
        self.launcher_pid, self.rave_pid, self.stranger_pid = launcher_pid, rave_pid, stranger_pid

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        if handle == 0:
            return [SimpleNamespace(pid=self.rave_pid, usedGpuMemory=3 * 10**9),
                    SimpleNamespace(pid=self.stranger_pid, usedGpuMemory=5 * 10**9)]
        return [SimpleNamespace(pid=self.launcher_pid, usedGpuMemory=10**9)]


LAUNCHER = ("import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(30)\n")


def test_a_samples_runs_hold_the_gpu_memory_of_their_process_and_its_children(tmp_path):
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, text=True,
                                start_new_session=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        rave_pid = int(launcher.stdout.readline())
        nvml = NVML(FamilyNVML(launcher.pid, rave_pid, stranger.pid))
        s = sample(tmp_path, nvml, runs={7: [launcher.pid], 8: [stranger.pid], 9: [os.getpid()]})
        assert s.runs[7] == {0: 3 * 10**9, 1: 10**9}    # the launcher and RAVE, its child
        assert s.runs[8] == {0: 5 * 10**9}
        assert s.runs[9] == {0: 8 * 10**9, 1: 10**9}    # this test: every process here is its child
        assert run_gpu_usage(s, [launcher.pid]) == {0: 3 * 10**9, 1: 10**9}
        assert run_gpu_memory(s, [launcher.pid]) == 4 * 10**9
        assert describe_run_gpu_memory(s, 7) == "3.0 GB on GPU 0 (of 80.0 GB), 1.0 GB on GPU 1 (of 80.0 GB)"
        assert describe_run_gpu_memory(s, 8) == "5.0 GB on GPU 0 (of 80.0 GB)"
        nobody = sample(tmp_path, nvml, runs={10: [rave_pid + 10**7]})  # a pid no GPU lists
        assert nobody.runs == {10: {}}
        assert describe_run_gpu_memory(nobody, 10) == "none (the NVIDIA driver lists no GPU memory for its process)"
        assert describe_run_gpu_memory(s, 10) == ""     # not asked for: another machine's run, or not live
        assert sample(tmp_path, nvml).runs == {}         # no runs given: none measured
    finally:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()
        launcher.stdout.close()
        stranger.kill()
        stranger.wait()


def test_without_nvidia_no_run_has_a_gpu_figure(tmp_path):
    s = sample(tmp_path, NVML(BrokenNVML()), runs={7: [os.getpid()]})
    assert s.runs == {} and describe_run_gpu_memory(s, 7) == "" and describe_run_gpu_memory(None, 7) == ""


def test_gpu_memory_totals_in_nvidia_smis_order():
    assert gpu_memory_totals(NVML(FakeNVML())) == [8 * 10**10, 8 * 10**10]
    assert gpu_memory_totals(NVML(BrokenNVML())) == []

    class Hiccup(FakeNVML):
        def nvmlDeviceGetMemoryInfo(self, handle):
            raise RuntimeError("GPU is lost")
    assert gpu_memory_totals(NVML(Hiccup())) == []
    assert isinstance(gpu_memory_totals(), list)  # the real library on this machine: never raises
