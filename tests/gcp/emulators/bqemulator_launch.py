"""Start bqemulator with DuckDB's `spatial` extension made optional.

Runs inside the emulator's own venv (see `install`). bqemulator refuses to start when it cannot
INSTALL the extension, which needs the network; mlsys does not use GEOGRAPHY, so loading it is
best effort here. Arguments are those of `bqemulator`, e.g. `start --rest-port 9050`.
"""

import sys

from bqemulator.cli import main
from bqemulator.storage import engine


def _load_spatial_if_present(self) -> None:
    try:
        self._connection.execute("LOAD spatial")
    except Exception:  # noqa: BLE001 - offline: not cached, GEOGRAPHY stays unsupported
        pass


engine.DuckDBEngine._load_spatial = _load_spatial_if_present

if __name__ == "__main__":
    sys.exit(main())
