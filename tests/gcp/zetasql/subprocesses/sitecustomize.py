"""Loaded by every Python process the tests start (the GoogleSQL plugin puts this folder on
PYTHONPATH): when such a process imports google-cloud-bigquery, its `Client.query` reports each
statement, with the schemas of the tables it names as they are then, to the file
GOOGLESQL_CAPTURE_LOG, where the test that started it analyses them (tests/gcp/zetasql/plugin).

It does nothing in another interpreter (the emulator's own venv) or without the variable, and
imports nothing until google.cloud.bigquery.client is imported.
"""

import importlib.abc
import importlib.util
import os
import sys

_LOG = os.environ.get("GOOGLESQL_CAPTURE_LOG")
_TARGET = "google.cloud.bigquery.client"


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
            if repo not in sys.path:
                sys.path.append(repo)
            from tests.gcp.zetasql import capture

            capture.report_to_file(_LOG, module.Client)

        spec.loader.exec_module = exec_module
        return spec


if _LOG and os.environ.get("GOOGLESQL_CAPTURE_PREFIX") == sys.prefix:
    sys.meta_path.insert(0, _PatchOnImport())
