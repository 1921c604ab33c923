"""Where the app keeps its files: explicit > RAVE_GUI_DATA_DIR > platform default."""
from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import platformdirs
import pytest

from rave_gui.core import paths


@pytest.fixture
def platform(tmp_path, monkeypatch) -> SimpleNamespace:
    """The platform default, pointed into tmp_path; ``calls`` records how it was asked for."""
    ns = SimpleNamespace(dir=tmp_path / "platform" / "rave-gui", calls=[])

    def user_data_dir(appname=None, appauthor=None, *args, **kwargs):
        ns.calls.append((appname, appauthor))
        return str(ns.dir)

    monkeypatch.setattr(platformdirs, "user_data_dir", user_data_dir)
    return ns


def test_explicit_wins_over_env_and_platform(tmp_path, monkeypatch, platform):
    monkeypatch.setenv(paths.ENV_DATA_DIR, str(tmp_path / "from-env"))
    chosen = tmp_path / "explicit" / "nested"
    result = paths.data_dir(chosen)
    assert result == chosen.resolve()
    assert result.is_dir()
    assert not (tmp_path / "from-env").exists() and not platform.dir.exists()


def test_explicit_accepts_str_and_expands_user(tmp_path, monkeypatch, platform):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    result = paths.data_dir("~/my data")
    assert result == (tmp_path / "home" / "my data").resolve() and result.is_dir()


def test_env_wins_over_platform(tmp_path, monkeypatch, platform):
    monkeypatch.setenv(paths.ENV_DATA_DIR, str(tmp_path / "from-env"))
    for explicit in (None, ""):
        result = paths.data_dir(explicit)
        assert result == (tmp_path / "from-env").resolve() and result.is_dir()
    assert not platform.dir.exists()


def test_platform_default_when_nothing_else(monkeypatch, platform):
    monkeypatch.delenv(paths.ENV_DATA_DIR, raising=False)
    result = paths.data_dir()
    assert result == platform.dir.resolve() and result.is_dir()
    assert platform.calls[0][0] == paths.APP_NAME == "rave-gui"


def test_empty_env_falls_back_to_platform(monkeypatch, platform):
    monkeypatch.setenv(paths.ENV_DATA_DIR, "")
    assert paths.data_dir() == platform.dir.resolve()


def test_relative_path_is_made_absolute(tmp_path, monkeypatch, platform):
    monkeypatch.chdir(tmp_path)
    result = paths.data_dir("rel")
    assert result.is_absolute() and result == (tmp_path / "rel").resolve()


def test_existing_folder_is_fine(tmp_path, platform):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("x")
    assert paths.data_dir(tmp_path / "d") == (tmp_path / "d").resolve()
    assert (tmp_path / "d" / "keep").read_text() == "x"


def test_database_and_runs_paths(tmp_path):
    assert paths.database_path(tmp_path) == tmp_path / paths.DB_FILENAME
    assert paths.runs_dir(tmp_path) == tmp_path / "runs"


def test_real_platformdirs_follows_xdg_on_linux(tmp_path, monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("XDG_DATA_HOME is the Linux convention")
    monkeypatch.delenv(paths.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    result = paths.data_dir()
    assert result == (tmp_path / "xdg" / "rave-gui").resolve() and result.is_dir()


def test_a_file_in_the_way_is_a_clear_error(tmp_path, platform):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    for target in (blocker, blocker / "below"):
        with pytest.raises(paths.DataDirError) as info:
            paths.data_dir(target)
        message = str(info.value)
        assert str(blocker) in message and "--data-dir" in message and message.endswith(".")
        assert isinstance(info.value, OSError)
    assert blocker.read_text() == "x"


# -- a folder that exists but cannot be written ------------------------------------------

@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_a_folder_where_no_file_can_be_made_is_refused(platform):
    """/proc exists and is a folder, but nobody (root included) can create a file in it."""
    with pytest.raises(paths.DataDirError) as info:
        paths.data_dir("/proc")
    message = str(info.value)
    assert message.startswith("The data folder /proc cannot be written (")
    assert message.endswith("Choose another with --data-dir or RAVE_GUI_DATA_DIR, or fix its permissions.")


def test_the_write_check_leaves_nothing_behind(tmp_path, platform):
    paths.data_dir(tmp_path / "d")
    assert list((tmp_path / "d").iterdir()) == []


def test_a_symlink_loop_or_a_name_too_long_is_a_clear_error(tmp_path, platform):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for target in (tmp_path / "a", tmp_path / "a" / "below", tmp_path / ("x" * 300)):
        with pytest.raises(paths.DataDirError) as info:
            paths.data_dir(target)
        assert "--data-dir" in str(info.value) and str(info.value).endswith(".")
