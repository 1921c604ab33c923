"""The one name rule for runs and datasets (backend/names.py)."""
from __future__ import annotations

import pytest

from rave_gui.backend.datasets import validate_dataset_name
from rave_gui.backend.names import MAX_NAME, name_from_folder, validate_name

EXAMPLES = ["voice", "  padded  ", "Strings \u2713", 'say "hi"', "trailing.", "a-b_c.d", "x" * 80,
            "x" * 81, "", "   ", None, 42, "a/b", "a\\b", "a:b", "a*b", "a?b", "a<b>", "a|b",
            "tab\there", "new\nline", "del\x7f", "nul\x00", ".hidden", "-flag", " .x", "\u00e9t\u00e9"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_run_rule_is_the_one_training_uses(name):
    """Until training.py imports it, names.validate_name must answer exactly as training did."""
    from rave_gui.backend import training
    expected = actual = None
    try:
        expected = training.validate_name(name)
    except ValueError as exc:
        expected = ("error", str(exc))
    try:
        actual = validate_name(name)
    except ValueError as exc:
        actual = ("error", str(exc))
    assert actual == expected


@pytest.mark.parametrize("name, message", [
    ("", "Give the dataset a name."),
    ("x" * 65, "The dataset name is 65 characters long; keep it under 64."),
    ("a/b:c", "The dataset name cannot contain / :: it becomes a folder name."),
    ("bell\x07", "The dataset name cannot contain \\x07: it becomes a folder name."),
    ("-x", "The dataset name cannot start with '.' or '-'."),
])
def test_dataset_messages_say_dataset(name, message):
    with pytest.raises(ValueError) as info:
        validate_dataset_name(name)
    assert str(info.value) == message


def test_good_names_come_back_stripped():
    assert validate_dataset_name("  my voice  ") == "my voice"
    assert validate_name("x" * MAX_NAME) == "x" * MAX_NAME
    assert validate_name("x" * 10, "run", max_len=10) == "x" * 10


@pytest.mark.parametrize("folder, name", [
    ("drums", "drums"), (".hidden", "hidden"), ("-. -x", "x"), ("a:b*c", "a_b_c"),
    ("...", "dataset"), ("x" * 100, "x" * 64), ("tab\tname", "tab_name"),
])
def test_a_folder_name_is_made_into_a_good_name(folder, name):
    assert name_from_folder(folder, "dataset", 64) == name
