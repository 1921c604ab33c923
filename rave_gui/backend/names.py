"""The one rule for the names a person gives runs and datasets.

A name becomes a folder name (RAVE's run folder, a dataset's output folder),
so it must be one on every platform: stripped, not empty, not too long, none
of ``/ \\ : * ? < > |``, no control character or DEL, and not starting with
``.`` (a hidden folder) or ``-`` (read as an option by the CLI).
"""
from __future__ import annotations

from typing import Any

BAD_NAME_CHARS = frozenset('/\\:*?<>|') | {chr(c) for c in range(32)} | {"\x7f"}
MAX_NAME = 80


def validate_name(name: Any, what: str = "run", max_len: int = MAX_NAME) -> str:
    """The stripped name, or ``ValueError`` with a sentence saying what is wrong.

    ``what`` names the thing in the sentence ("run", "dataset")."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"Give the {what} a name.")
    name = name.strip()
    if len(name) > max_len:
        raise ValueError(f"The {what} name is {len(name)} characters long; keep it under {max_len}.")
    bad = sorted({c for c in name if c in BAD_NAME_CHARS})
    if bad:
        shown = " ".join(repr(c)[1:-1] for c in bad)
        raise ValueError(f"The {what} name cannot contain {shown}: it becomes a folder name.")
    if name[0] in ".-":
        raise ValueError(f"The {what} name cannot start with '.' or '-'.")
    return name


def name_from_folder(folder_name: str, what: str = "run", max_len: int = MAX_NAME) -> str:
    """A name that passes :func:`validate_name`, made from a folder's name (for a
    dataset imported without one): bad characters become ``_``, a leading ``.`` or
    ``-`` goes, and it is cut to ``max_len``."""
    name = "".join("_" if c in BAD_NAME_CHARS else c for c in folder_name)
    previous = None
    while name != previous:
        previous, name = name, name.strip().lstrip(".-")
    return validate_name(name[:max_len].strip() or what, what, max_len)
