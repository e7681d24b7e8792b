"""mlsys: batch predictions for scikit-learn models over warehouse tables.

One package per capability: `predict`, `registry`, `models`, `monitoring`, `cli`, `jobs`,
`warehouse`, `store`; shared values (`settings`, `ids`, `errors`, `tables`) beside them.
"""

from mlsys import _moved

_moved.install()
