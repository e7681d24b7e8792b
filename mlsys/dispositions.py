"""What a job does to an output table that exists (BigQuery's write dispositions), in one place
for the pipeline, the backends, the API's request models and the CLI. Light on purpose: the
CLI imports it at start-up."""

from __future__ import annotations

from typing import Literal, get_args

from mlsys.errors import InvalidRequest

WriteDisposition = Literal["WRITE_APPEND", "WRITE_TRUNCATE", "WRITE_EMPTY"]
WRITE_DISPOSITIONS: tuple[str, ...] = get_args(WriteDisposition)


def check_disposition(value: str) -> WriteDisposition:
    if value not in WRITE_DISPOSITIONS:
        raise InvalidRequest(
            f"Unknown write disposition {value!r}.",
            hint=f"Use one of {', '.join(WRITE_DISPOSITIONS)}.",
        )
    return value  # type: ignore[return-value]
