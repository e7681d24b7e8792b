"""mlsys: batch predictions for scikit-learn models over warehouse tables.

The top level holds what every package shares (settings, ids, errors, the owned tables) and the
notebook helpers (`bq`, `gcs`, `vis`, `datasets`); each capability has its own package.
Imports point one way (tests/unit/test_import_graph.py): cli → predict, evaluation → registry
→ models → monitoring → warehouse, store → these shared modules.
"""

from mlsys import _moved

_moved.install()
