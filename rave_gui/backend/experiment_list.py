"""The experiments table's rows, a page at a time: every id in the table's order
(cheap: one indexed query, no JSON), then the records of just the ids a view
shows. ``TrainingManager.list_experiments`` reads and decodes every record; a
table of 1 000 runs only ever shows a few dozen.

Plain Python over the database, as ``TrainingManager`` (whose order and record
decoding these follow: a test holds them to it).
"""
from __future__ import annotations

from typing import Iterable

#: TrainingManager.list_experiments' order: the queue first, in its order, then newest first
ORDER = " ORDER BY queue_pos IS NULL, queue_pos, started_at DESC, id DESC"
BATCH = 500  # ids per query (SQLite allows 32 766 parameters; a short statement is cheaper)


def experiment_ids(manager, project_id: int | None = None) -> list[int]:
    """Every experiment's id, in the order ``list_experiments`` returns them."""
    if project_id is None:
        rows = manager.db.query("SELECT id FROM experiments" + ORDER)
    else:
        rows = manager.db.query("SELECT id FROM experiments WHERE project_id = ?" + ORDER, (project_id,))
    return [row[0] for row in rows]


def experiments_by_id(manager, ids: Iterable[int]) -> dict[int, dict]:
    """``{id: experiment}`` (decoded as ``get_experiment`` does) for those of
    ``ids`` that exist."""
    ids = list(dict.fromkeys(ids))
    out: dict[int, dict] = {}
    for start in range(0, len(ids), BATCH):
        part = ids[start:start + BATCH]
        rows = manager.db.query(f"SELECT * FROM experiments WHERE id IN ({','.join('?' * len(part))})", part)
        for row in rows:
            exp = type(manager)._decode(row)
            out[exp["id"]] = exp
    return out
