"""Generated inputs (Hypothesis) for the name rule and for registering a dataset:
whatever the text, the answer is a ValueError with a sentence and nothing written,
or a record that makes sense. No example database is kept (``database=None``)."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rave_gui.backend.datasets import (MAX_CHANNELS, MAX_SAMPLE_RATE, MAX_SECONDS, NAME_MAX,
                                       DatasetManager)
from rave_gui.backend.names import BAD_NAME_CHARS, validate_name
from rave_gui.core.database import Database

FUZZ = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def assert_sentence(message: str) -> None:
    assert message and message[0].isupper() and message.rstrip().endswith("."), message


# -- names ------------------------------------------------------------------------------

name_text = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(list("ab .-_/\\:*?<>|\t\x00\x7f\u00e9 ")), max_size=90),
    st.text(min_size=60, max_size=100),
)


@FUZZ
@given(name=name_text, what=st.sampled_from(["run", "dataset"]), max_len=st.integers(1, 100))
def test_a_name_is_refused_with_a_sentence_or_is_a_good_folder_name(name, what, max_len):
    try:
        result = validate_name(name, what, max_len)
    except ValueError as exc:
        assert_sentence(str(exc))
        assert f"{what} " in str(exc)
        return
    assert result == name.strip() and 1 <= len(result) <= max_len
    assert not BAD_NAME_CHARS & set(result) and result[0] not in ".-"
    assert validate_name(result, what, max_len) == result  # stable


# -- registering a dataset -----------------------------------------------------------------

@pytest.fixture(scope="module")
def place():
    """One dataset folder and one database for every generated example (each example
    leaves the table as it found it)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "dataset"
        folder.mkdir()
        (folder / "data.mdb").write_bytes(b"")
        db = Database(Path(tmp) / "fuzz.sqlite3")
        yield folder, db, DatasetManager(db)
        db.close()


def rows(db) -> list[dict]:
    return [dict(r) for r in db.query("SELECT * FROM datasets")]


def check_register(place, text: str, name=None) -> None:
    folder, db, manager = place
    (folder / "metadata.yaml").write_text(text, encoding="utf-8", errors="surrogateescape")
    assert rows(db) == []
    try:
        dataset_id = manager.register(folder, name=name)
    except ValueError as exc:
        assert type(exc) is ValueError
        assert_sentence(str(exc))
        assert rows(db) == []  # nothing written
        return
    try:
        (ds,) = rows(db)
        assert ds["id"] == dataset_id and ds["path"] == str(folder.resolve())
        assert validate_name(ds["name"], "dataset", NAME_MAX) == ds["name"]
        assert type(ds["channels"]) is int and 1 <= ds["channels"] <= MAX_CHANNELS
        assert type(ds["sample_rate"]) is int and 1 <= ds["sample_rate"] <= MAX_SAMPLE_RATE
        assert math.isfinite(ds["duration"]) and 0 < ds["duration"] <= MAX_SECONDS
        assert type(ds["num_samples"]) is int and ds["num_samples"] >= 1
        assert ds["num_samples"] == round(ds["sample_rate"] * ds["duration"])
    finally:
        db.execute("DELETE FROM datasets")


odd_numbers = st.one_of(
    st.integers(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.sampled_from([1, 2, 64, 65, 0, -1, 44100, 10 ** 6, 10 ** 6 + 1, 2.0, 2.5, 315576000, 1e20]),
)
odd_values = st.one_of(odd_numbers, st.text(max_size=20), st.lists(odd_numbers, max_size=3),
                       st.dictionaries(st.text(max_size=5), odd_numbers, max_size=2))


def mostly(good: st.SearchStrategy) -> st.SearchStrategy:
    """Two good values for one odd one, so that both answers are seen often (one_of
    would flatten the many odd strategies and pick a good one rarely)."""
    return st.integers(0, 2).flatmap(lambda pick: odd_values if pick == 0 else good)


metadata = st.fixed_dictionaries(  # a missing key is the odd value None
    {"channels": mostly(st.integers(1, MAX_CHANNELS)),
     "sr": mostly(st.integers(1, MAX_SAMPLE_RATE)),
     "n_seconds": mostly(st.floats(0, MAX_SECONDS))},
    optional={"lazy": mostly(st.booleans())},
).flatmap(lambda known: st.dictionaries(st.text(max_size=8), odd_values, max_size=2)
          .map(lambda extra: {**extra, **known}))


@FUZZ
@given(meta=metadata)
def test_register_with_generated_settings(place, meta):
    check_register(place, yaml.safe_dump(meta, allow_unicode=True))


@FUZZ
@given(channels=st.sampled_from(["1", "2", "2.0", "2.7", "true", "0x10", "1_0", "+2", "~", ".inf"]),
       sr=st.sampled_from(["44100", "4.41e+4", "1.0e+30", "44_100", "0o777", ".nan", "-48000", "'48000'"]),
       seconds=st.sampled_from(["29.7", "0", "-0.0", ".inf", "-.inf", ".NaN", "1e20", "1.0e+20",
                                "3.2e8", "315576000.5", "'1'", "[]", "", "null"]),
       lazy=st.sampled_from(["false", "true", "no", "yes", "'false'", "1", ""]))
def test_register_with_yaml_spellings_of_numbers(place, channels, sr, seconds, lazy):
    check_register(place, f"channels: {channels}\nsr: {sr}\nn_seconds: {seconds}\nlazy: {lazy}\n")


@FUZZ
@given(text=st.one_of(st.text(), st.text(alphabet="{}[]:-,'\"!&*?|>#%@` \n\t.0123456789eE+"),
                      st.binary().map(lambda b: b.decode("utf-8", "surrogateescape"))))
def test_register_with_generated_text(place, text):
    check_register(place, text)


@FUZZ
@given(name=name_text)
def test_register_with_a_generated_name(place, name):
    check_register(place, "channels: 1\nsr: 44100\nn_seconds: 2.5\n", name=name)
