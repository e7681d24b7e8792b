"""Arrow batch sizing shared by the warehouses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa


def rebatch(pages: Iterable[pa.RecordBatch], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Regroup pages (whose size the server picks) into batches of at most `batch_rows`."""
    pending: list[pa.Table] = []
    size = 0
    for page in pages:
        table = pa.Table.from_batches([page])
        pending.append(table)
        size += table.num_rows
        while size >= batch_rows:
            whole = pa.concat_tables(pending).combine_chunks()
            head, rest = whole.slice(0, batch_rows), whole.slice(batch_rows)
            yield from head.to_batches(max_chunksize=batch_rows)
            pending, size = [rest], rest.num_rows
    if size:
        yield from pa.concat_tables(pending).combine_chunks().to_batches(max_chunksize=batch_rows)
