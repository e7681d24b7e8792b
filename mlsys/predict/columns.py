"""Which input columns a prediction job copies to its output when none are declared.

Like Vertex AI batch prediction, which keeps each input instance beside its prediction, the
output carries the input's columns that are not model features (ids, keys, dates, labels kept
for evaluation), then the prediction columns. `id_columns` narrows that to the columns named.
"""

from __future__ import annotations

from collections.abc import Iterable

from mlsys.errors import InvalidRequest

#: Beyond this many copied columns the default is more likely a mistake than a wish.
MAX_COPIED_COLUMNS = 64


def default_id_columns(
    input_columns: Iterable[str], features: Iterable[str], reserved: Iterable[str], table: object
) -> list[str]:
    """The input's non-feature columns, in input order, leaving out the output's own names.

    Raises:
        InvalidRequest: the input has no such column (rows could not be told apart), or so
            many that copying them all is unreasonable; both say to pass id_columns.
    """
    skip = set(features) | set(reserved)
    copied = [c for c in input_columns if c not in skip]
    if not copied:
        raise InvalidRequest(
            f"Input table {table} has only the model's feature columns: the predictions could "
            "not be joined back to its rows.",
            hint='Add a key column to the input and pass it as id_columns (e.g. ["PassengerId"]).',
        )
    if len(copied) > MAX_COPIED_COLUMNS:
        shown = ", ".join(copied[:5])
        raise InvalidRequest(
            f"Input table {table} has {len(copied)} columns besides the model's features; "
            f"copying them all to the output (the default) is limited to {MAX_COPIED_COLUMNS}.",
            hint=f"Pass id_columns naming the columns that identify a row (from: {shown}, ...).",
        )
    return copied
