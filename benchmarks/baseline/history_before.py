"""``TrainingManager.get_metric_history`` as it was before issue 14 (one SQL
query, a list of tuples per key), kept for side-by-side benchmarks."""
from __future__ import annotations


def get_metric_history_before(manager, experiment_id, keys=None) -> dict[str, list]:
    sql = "SELECT key, step, value FROM metric_points WHERE experiment_id = ?"
    params: list = [experiment_id]
    if keys is not None:
        keys = list(keys)
        sql += f" AND key IN ({','.join('?' * len(keys))})"
        params += keys
    history: dict[str, list] = {}
    for key, step, value in manager.db.query(sql + " ORDER BY key, step", params):
        history.setdefault(key, []).append((step, value))
    return history
