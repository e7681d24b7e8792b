"""The predict capability: a fitted model over a warehouse table, in shards, landed once.

Owns the request and its prepared form (`PredictSpec`, `PreparedPredict`), the steps a job runs
(prepare, plan, shard, commit) and the in-process run of all of them (`predict_table`):
- `spec`: the typed values of a job (`PredictSpec`, `PreparedPredict`) and its output schema;
- `steps`: every step of a job (prepare, plan, run a shard, commit), as the workers run them;
- `monitored`: the monitoring wiring (a shard's profile, the job's drift), for both runs;
- `local`: a whole job in this process (`predict_table`);
- `pool`: shards run side by side in worker processes for the in-process run;
- `incremental`: which input keys a job skips because an earlier job already predicted them;
- `commit`: the rules of the output table (dispositions, landed once, refused outputs);
- `columns`: which input columns are copied next to the predictions;
- `protect`: the tables a job may never read or write (the registry, the stats).
"""

from mlsys.predict.local import PredictResult, predict_table
from mlsys.predict.monitored import record_job_stats, run_monitored_shard, shard_monitor
from mlsys.predict.spec import (
    MAX_ID_COLUMNS,
    METADATA_COLUMNS,
    PROBABILITY_COLUMN,
    PredictSpec,
    PreparedPredict,
    build_output_schema,
)
from mlsys.predict.steps import (
    commit_job,
    load_model,
    output_schema_for,
    plan_shards,
    predict_batch,
    prepare_predict,
    run_shard,
    shards_for_slots,
)

__all__ = [
    "MAX_ID_COLUMNS",
    "METADATA_COLUMNS",
    "PROBABILITY_COLUMN",
    "PredictResult",
    "PredictSpec",
    "PreparedPredict",
    "build_output_schema",
    "commit_job",
    "load_model",
    "output_schema_for",
    "plan_shards",
    "predict_batch",
    "predict_table",
    "prepare_predict",
    "record_job_stats",
    "run_monitored_shard",
    "run_shard",
    "shard_monitor",
    "shards_for_slots",
]
