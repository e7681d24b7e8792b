"""The `mlsys` command.

Owns what a person types and reads in a terminal:
- `commands`: the `mlsys` group and the commands that run in-process (demo, query, predict,
  registry, token), the one-line error messages and exit codes;
- `remote`: `mlsys submit` and `mlsys jobs`, through the API (`mlsys.client.MlsysClient`);
- `schedules`: `mlsys schedule`, through the API;
- `demo`: the Titanic demo's tables, model and first job.
"""

from mlsys.cli.commands import main

__all__ = ["main"]
