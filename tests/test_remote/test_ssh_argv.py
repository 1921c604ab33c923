"""ssh and rsync command lines, and the quoting of everything a person controls.

No server here: the real ``sh``, ``ssh -G`` (which only parses) and ``rsync``
(with a stand-in for ssh that records its argv) check that each layer of
quoting reads back exactly what went in."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rave_gui.backend import remote_scripts
from rave_gui.backend.remote_layout import display_command, run_folder_name, ssh_line, train_argv
from rave_gui.backend.ssh import (SSHTarget, classify_ssh_failure, control_dir, first_known_hosts, parse_host,
                                  remote_shell, rsync_word, sh_join, sh_path, ssh_option_value)

NASTY = ["plain", "with space", "it's", 'say "hi"', "$HOME", "a;b", "`id`", "$(id)", "x\\y", "*", "~", "-n",
         "tab\there", "new\nline", "ö ü", "", "'", '"', "a'b\"c$d;e"]


def run_sh(script: str) -> subprocess.CompletedProcess:
    """What a host's login shell does with ssh's command string: ``sh -c STRING``."""
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)


def echo_words(words) -> str:
    return "for w in " + sh_join(words) + "; do printf '%s\\0' \"$w\"; done"


@pytest.mark.parametrize("word", NASTY)
def test_every_word_survives_two_shells(word):
    """The script goes through the host's login shell, then ``sh -c``: each word
    arrives as it was."""
    out = run_sh(remote_shell(echo_words([word, "end"])))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\0")[:-1] == [word, "end"]


def test_tilde_paths_are_the_remote_home(tmp_path):
    out = run_sh(remote_shell("printf '%s|' " + " ".join([sh_path("~/rave work/it's"), sh_path("~"),
                                                            sh_path("/abs/~x"), sh_path("rel dir")])))
    home = subprocess.run(["sh", "-c", 'printf %s "$HOME"'], capture_output=True, text=True).stdout
    assert out.stdout.split("|")[:-1] == [f"{home}/rave work/it's", home, "/abs/~x", "rel dir"]


def test_ssh_argv_options_and_destination_after_double_dash(tmp_path):
    target = SSHTarget("gpu-box", user="me", port=2222, ssh_config=str(tmp_path / "cfg file"),
                       control_path_dir=str(tmp_path / "ctl dir"))
    argv = target.ssh_argv("echo hi")
    assert argv[0] == "ssh" and argv[-3:] == ["--", "me@gpu-box", "echo hi"]
    joined = " ".join(argv)
    for option in ("BatchMode=yes", "ConnectTimeout=10", "ControlMaster=auto", "ControlPersist=60",
                   "ServerAliveInterval=15", f'ControlPath="{tmp_path / "ctl dir"}/%C"'):
        assert option in argv or option in joined, option
    assert "StrictHostKeyChecking" not in joined  # never turned off
    assert argv[argv.index("-F") + 1] == str(tmp_path / "cfg file")
    assert argv[argv.index("-p") + 1] == "2222"
    fresh = target.ssh_argv("x", multiplex=False)
    assert "ControlPath=none" in fresh and "ControlMaster=auto" not in fresh


def test_ssh_reads_the_options_as_meant(tmp_path):
    """``ssh -G`` parses without connecting: the control path with spaces and the
    port come out as given."""
    ctl = tmp_path / "Application Support" / "rave-gui" / "ssh"
    config = tmp_path / "my config"
    config.write_text("Host box\n  HostName 127.0.0.9\n")
    target = SSHTarget("box", port=2200, ssh_config=str(config), control_path_dir=str(ctl))
    argv = ["ssh", "-G", *target.options(True), "--", target.destination]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    seen = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert seen["hostname"] == "127.0.0.9" and seen["port"] == "2200"
    assert seen["controlpath"].startswith(str(ctl) + "/") and len(seen["controlpath"]) == len(str(ctl)) + 41
    assert seen["controlmaster"] == "auto" and seen["batchmode"] == "yes"
    assert seen["stricthostkeychecking"] != "false"


@pytest.mark.parametrize("word", [w for w in NASTY if w and "\n" not in w and "\t" not in w])
def test_rsync_splits_the_e_command_back_into_the_words(tmp_path, word):
    """rsync's -e value has its own quoting (quotes, doubled inside, no backslashes):
    a stand-in ssh records the argv rsync gives it."""
    record = tmp_path / "argv.json"
    fake = tmp_path / "fake ssh"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv, open({str(record)!r}, 'w'))\n"
                    "sys.exit(1)\n")
    fake.chmod(0o755)
    words = [str(fake), "-o", f"ControlPath={word}/%C", "-F", word]
    rsh = " ".join(rsync_word(w) for w in words)
    subprocess.run(["rsync", "-e", rsh, "-s", str(tmp_path / "fake ssh"), "host:dest"], capture_output=True,
                   timeout=30)
    argv = json.loads(record.read_text())
    assert argv[:len(words)] == words
    assert argv[len(words)] == "host"


def test_target_rsync_argv_round_trips_through_rsync(tmp_path):
    ctl = tmp_path / "it's a dir"
    target = SSHTarget("box", port=22, ssh_config=str(tmp_path / 'cfg "x"'), control_path_dir=str(ctl))
    argv = target.rsync_argv("-rt", "src/", target.remote("/remote path/it's"))
    assert argv[:2] == ["rsync", "-e"] and "-s" in argv  # paths travel in rsync's protocol, not a shell
    assert argv[-1] == "box:/remote path/it's"


def test_option_values_with_a_double_quote_are_refused():
    with pytest.raises(ValueError):
        ssh_option_value('/a"b')


@pytest.mark.parametrize("text, expected", [
    ("gpu-box", ("gpu-box", None, None)),
    ("me@gpu-box", ("gpu-box", "me", None)),
    ("me@10.0.0.2:2222", ("10.0.0.2", "me", 2222)),
    ("host.example.org:22", ("host.example.org", None, 22)),
])
def test_parse_host(text, expected):
    assert parse_host(text) == expected


@pytest.mark.parametrize("text, words", [
    ("", "Enter the host"), ("-oProxyCommand=x", "cannot start with a dash"), ("a b", "not a host name"),
    ("me@box:99999", "not a port"), ("me@box:x", "not a port"), ("m e@box", "not a user name"),
    ("box;rm", "not a host name"), ("$(id)", "not a host name"),
])
def test_parse_host_refuses(text, words):
    with pytest.raises(ValueError, match=words):
        parse_host(text)


@pytest.mark.parametrize("stderr, kind", [
    ("ssh: connect to host 127.0.0.1 port 1: Connection refused", "refused"),
    ("ssh: Could not resolve hostname nope: Name or service not known", "resolve"),
    ("ssh: connect to host 10.255.255.1 port 22: Connection timed out", "timeout"),
    ("No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\n"
     "Host key verification failed.", "hostkey-unknown"),
    ("@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @\nHost key verification failed.", "hostkey-changed"),
    ("root@127.0.0.1: Permission denied (publickey).", "auth"),
    ("kex_exchange_identification: Connection closed by remote host", "closed"),
])
def test_ssh_failures_are_classified(stderr, kind):
    assert classify_ssh_failure(stderr) == kind


def test_control_dir_is_private_and_short(tmp_path):
    import tempfile
    short_root = Path(tempfile.mkdtemp(prefix="rg", dir="/tmp"))
    try:
        folder = control_dir(short_root / "data")
        assert folder == short_root / "data" / "ssh" and (folder.stat().st_mode & 0o777) == 0o700
    finally:
        shutil.rmtree(short_root)
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    short = control_dir(deep)
    assert len(str(short)) + 58 <= 103 and (short.stat().st_mode & 0o777) == 0o700
    assert control_dir(deep) == short  # the same folder each time
    shutil.rmtree(short)


def test_control_socket_fits_while_ssh_binds_it(tmp_path):
    """ssh binds "<dir>/<%C>.<16 random>" then renames it: the folder leaves room for both."""
    import tempfile
    base = Path(tempfile.mkdtemp(prefix="rg", dir="/tmp"))
    try:
        for length in range(10, 80, 3):
            data = base / ("d" * length)
            folder = control_dir(data)
            assert len(str(folder)) + 1 + 40 + 17 <= 103, folder
            if folder.parent != data:
                shutil.rmtree(folder)
    finally:
        shutil.rmtree(base)


def test_known_hosts_path_with_spaces_is_read_whole(tmp_path):
    folder = tmp_path / "my keys"
    folder.mkdir()
    assert first_known_hosts(f"{folder}/known_hosts") == folder / "known_hosts"
    assert first_known_hosts(f"{folder}/known_hosts {folder}/known_hosts2") == folder / "known_hosts"


# -- the scripts --------------------------------------------------------------------------------
def test_launch_script_runs_argv_exactly_in_its_own_session(tmp_path):
    """The launch script, run by a local ``sh`` as the host would: the argv arrives
    unchanged (name with quotes, $, ;), the process leads a new session, its pid and
    start time are printed, its exit code lands in exitcode-TOKEN."""
    out = tmp_path / "run dir 'x'"
    out.mkdir()
    probe = tmp_path / "probe.py"
    probe.write_text("import json, os, sys\n"
                     "json.dump({'argv': sys.argv[1:], 'token': os.environ['RAVE_GUI_TOKEN'],\n"
                     "           'pgid': os.getpgid(0), 'sid': os.getsid(0), 'pid': os.getpid()},\n"
                     "          open('probe.json', 'w'))\n"
                     "print('hello from the training', flush=True)\n"
                     "import time; time.sleep(0.5); sys.exit(3)\n")
    argv = [sys.executable, str(probe), "train", "--name", "it's $HOME; `id` \"x\"", "--out_path", str(out)]
    script = remote_scripts.launch_script(str(out), argv, "abc123", {"RAVE_GUI_TOKEN": "abc123"})
    result = run_sh(remote_shell(script))
    assert result.returncode == 0, result.stderr
    started = remote_scripts.answers(result.stdout)["started"].split()
    pid, pgid, start = int(started[0]), int(started[1]), started[2]
    deadline = __import__("time").monotonic() + 30
    while not (out / "exitcode-abc123").exists():
        assert __import__("time").monotonic() < deadline
        __import__("time").sleep(0.05)
    probe_out = json.loads((out / "probe.json").read_text())
    assert probe_out["argv"] == argv[2:] and probe_out["token"] == "abc123"
    assert probe_out["pid"] == pid and probe_out["pgid"] == pgid == probe_out["sid"] and pgid != pid
    assert ":" in start
    assert (out / "exitcode-abc123").read_text().strip() == "3"
    assert "hello from the training" in (out / "train.log").read_text()
    status = remote_scripts.answers(run_sh(remote_shell(remote_scripts.status_script(str(out), pid, start,
                                                                                       "abc123"))).stdout)
    assert status == {"status": "dead", "exit": "3"}


def test_a_process_that_ends_at_once_is_never_taken_for_alive(tmp_path):
    script = remote_scripts.launch_script(str(tmp_path), ["/no/such/python", "x"], "t2", {})
    started = remote_scripts.answers(run_sh(script).stdout)["started"].split()
    assert len(started) == 2  # no start time: it is gone already
    import time
    deadline = time.monotonic() + 10
    while not (tmp_path / "exitcode-t2").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status = remote_scripts.answers(run_sh(remote_scripts.status_script(str(tmp_path), int(started[0]), "", "t2"))
                                    .stdout)
    assert status == {"status": "dead", "exit": "127"}
    assert "not found" in (tmp_path / "train.log").read_text()


def test_signal_script_spares_a_reused_pid(tmp_path):
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        script = remote_scripts.signal_script(sleeper.pid, sleeper.pid, "not-its-start", "TERM", group=True)
        assert remote_scripts.answers(run_sh(script).stdout) == {"signal": "gone"}
        assert sleeper.poll() is None
        real = remote_scripts.answers(run_sh(remote_scripts.launch_script(
            str(tmp_path), ["sleep", "30"], "t1", {})).stdout)["started"].split()
        pid, pgid, start = int(real[0]), int(real[1]), real[2]
        assert remote_scripts.answers(run_sh(remote_scripts.signal_script(pid, pgid, start, "TERM", True)).stdout) \
            == {"signal": "sent"}
        deadline = __import__("time").monotonic() + 10
        while remote_scripts.answers(run_sh(remote_scripts.status_script(str(tmp_path), pid, start, "t1")).stdout)[
                "status"] == "alive":
            assert __import__("time").monotonic() < deadline
    finally:
        sleeper.kill()
        sleeper.wait()


def test_train_argv_uses_the_hosts_gpus_and_display_command():
    cfg = dict(base_config="v2", modifiers=["causal"], name="my 'run'", max_steps=100, batch_size=8, val_every=50,
               device="auto", workers=None, overrides=["PHASE_1_DURATION=50"])
    argv = train_argv("/venv/bin/python", "/w/l.py", cfg, "/w/datasets/d-1", 1, "/w/runs/r", ["H200"], 16)
    assert argv[:3] == ["/venv/bin/python", "/w/l.py", "train"]
    assert argv[argv.index("--gpu") + 1] == "0" and argv[argv.index("--workers") + 1] == "8"
    cpu = train_argv("p", "l", dict(cfg, device="auto"), "/d", 1, "/o", [], 4)
    assert cpu[cpu.index("--gpu") + 1] == "-1" and cpu[cpu.index("--workers") + 1] == "0"
    machine = {"id": 3, "work_dir": "~/rave work", "python": "~/venv/bin/python", "host": "box", "user": "me",
               "port": 2222, "gpus": ["H200"], "cpus": 16, "ssh_config": None}
    shown = display_command(machine, cfg, {"name": "voice", "channels": 1})
    assert shown.startswith("cd ~/'rave work/runs/<experiment folder>' && ~/venv/bin/rave train --config v2")
    assert "--name 'my '\"'\"'run'\"'\"''" in shown and "--gpu 0" in shown
    assert ssh_line(machine) == "ssh -p 2222 me@box"


def test_run_folder_name_is_safe_and_unique(tmp_path):
    a, b = run_folder_name(tmp_path / "1"), run_folder_name(tmp_path / "other" / "1")
    assert a != b and a.startswith("1-") and all(c.isalnum() or c in "-._" for c in a)
    assert Path(run_folder_name(tmp_path / "x; rm -rf")).name == run_folder_name(tmp_path / "x; rm -rf")


def test_gpu_lines_from_nvidia_smi_are_read():
    from rave_gui.backend.connection_check import _gpu_check
    check = _gpu_check("NVIDIA H200, 143771 MiB\nNVIDIA A100-SXM4-80GB, 81920 MiB\nrc=0\n", "box")
    assert check.status == "ok" and [g["name"] for g in check.data["gpus"]] == ["NVIDIA H200", "NVIDIA A100-SXM4-80GB"]
    assert check.message == "GPU 0: NVIDIA H200 (143771 MiB), GPU 1: NVIDIA A100-SXM4-80GB (81920 MiB)."
    missing = _gpu_check("sh: 1: nvidia-smi: not found\nrc=127\n", "box")
    assert missing.status == "warning" and "no NVIDIA GPU" in missing.message and missing.data["gpus"] == []
    failed = _gpu_check("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\nrc=9\n", "box")
    assert failed.status == "warning" and failed.data["gpus"] == []
