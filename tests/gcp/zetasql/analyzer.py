"""Google's ZetaSQL analyzer as a local process: GoogleSQL statements resolved against a catalog.

BigQuery's dialect is ZetaSQL. The analyzer's `local_service` gRPC server comes from the npm
package pinned beside this file (`install` puts it in ~/.cache/mlsys/zetasql); its Python stubs
are generated from the package's protos by grpcio-tools into the same cache on first use, never
into the repo. `Analyzer.problems(statement)` says why ZetaSQL rejects a statement (a syntax
error, an unknown column, a type mismatch), with BigQuery's language features switched on.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
INSTALL = HERE / "install"

#: What BigQuery's GoogleSQL has beyond the core language. Left out on purpose: nanosecond
#: timestamps and the extended integer types (BigQuery has neither), protocol buffers, and
#: DISALLOW_GROUP_BY_FLOAT (FLOAT64 is groupable in BigQuery, so IS DISTINCT FROM takes it).
BIGQUERY_FEATURES = (
    "FEATURE_ANALYTIC_FUNCTIONS",
    "FEATURE_TABLESAMPLE",
    "FEATURE_DML_UPDATE_WITH_JOIN",
    "FEATURE_TABLE_VALUED_FUNCTIONS",
    "FEATURE_CREATE_TABLE_FUNCTION",
    "FEATURE_CREATE_AGGREGATE_FUNCTION",
    "FEATURE_TEMPLATE_FUNCTIONS",
    "FEATURE_GROUP_BY_ROLLUP",
    "FEATURE_CREATE_TABLE_PARTITION_BY",
    "FEATURE_CREATE_TABLE_CLUSTER_BY",
    "FEATURE_CREATE_TABLE_NOT_NULL",
    "FEATURE_CREATE_TABLE_FIELD_ANNOTATIONS",
    "FEATURE_CREATE_TABLE_AS_SELECT_COLUMN_LIST",
    "FEATURE_CREATE_TABLE_LIKE",
    "FEATURE_CREATE_TABLE_CLONE",
    "FEATURE_CREATE_TABLE_COPY",
    "FEATURE_CREATE_SNAPSHOT_TABLE",
    "FEATURE_CREATE_MATERIALIZED_VIEW_PARTITION_BY",
    "FEATURE_CREATE_MATERIALIZED_VIEW_CLUSTER_BY",
    "FEATURE_CREATE_VIEW_WITH_COLUMN_LIST",
    "FEATURE_UNENFORCED_PRIMARY_KEYS",
    "FEATURE_FOREIGN_KEYS",
    "FEATURE_NUMERIC_TYPE",
    "FEATURE_BIGNUMERIC_TYPE",
    "FEATURE_GEOGRAPHY",
    "FEATURE_JSON_TYPE",
    "FEATURE_JSON_ARRAY_FUNCTIONS",
    "FEATURE_JSON_VALUE_EXTRACTION_FUNCTIONS",
    "FEATURE_JSON_LAX_VALUE_EXTRACTION_FUNCTIONS",
    "FEATURE_JSON_CONSTRUCTOR_FUNCTIONS",
    "FEATURE_JSON_MUTATOR_FUNCTIONS",
    "FEATURE_INTERVAL_TYPE",
    "FEATURE_RANGE_TYPE",
    "FEATURE_PARAMETERIZED_TYPES",
    "FEATURE_NAMED_ARGUMENTS",
    "FEATURE_ENCRYPTION",
    "FEATURE_TIME_BUCKET_FUNCTIONS",
    "FEATURE_INVERSE_TRIG_FUNCTIONS",
    "FEATURE_ALTER_TABLE_RENAME_COLUMN",
    "FEATURE_ALTER_COLUMN_SET_DATA_TYPE",
)
#: Versioned features not in BigQuery (protocol buffers, Spanner's DDL).
NOT_BIGQUERY = ("PROTO", "SPANNER", "ORDERED_PRIMARY_KEYS", "TTL", "SQL_MACROS", "SEQUENCE_ARG")

#: BigQuery's REST type names -> ZetaSQL's TypeKind names.
TYPE_KINDS = {
    "STRING": "TYPE_STRING",
    "BYTES": "TYPE_BYTES",
    "INTEGER": "TYPE_INT64",
    "INT64": "TYPE_INT64",
    "FLOAT": "TYPE_DOUBLE",
    "FLOAT64": "TYPE_DOUBLE",
    "NUMERIC": "TYPE_NUMERIC",
    "BIGNUMERIC": "TYPE_BIGNUMERIC",
    "BOOLEAN": "TYPE_BOOL",
    "BOOL": "TYPE_BOOL",
    "TIMESTAMP": "TYPE_TIMESTAMP",
    "DATE": "TYPE_DATE",
    "TIME": "TYPE_TIME",
    "DATETIME": "TYPE_DATETIME",
    "GEOGRAPHY": "TYPE_GEOGRAPHY",
    "JSON": "TYPE_JSON",
    "INTERVAL": "TYPE_INTERVAL",
    "RECORD": "TYPE_STRUCT",
    "STRUCT": "TYPE_STRUCT",
}


class AnalyzerUnavailable(RuntimeError):
    """The analyzer is not installed here (run tests/gcp/zetasql/install)."""


def home() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(os.environ.get("MLSYS_TEST_ZETASQL_HOME") or cache / "mlsys" / "zetasql")


def package_dir() -> Path:
    return home() / "node_modules" / "@fivetrandevelopers" / "zetasql" / "lib" / "zetasql"


@dataclass(frozen=True)
class Statement:
    """One request's SQL as the client sent it, with what the analyzer needs to resolve it."""

    sql: str
    #: Query parameter name -> BigQuery type (STRING, TIMESTAMP, INT64, ...).
    params: Mapping[str, str] = field(default_factory=dict)
    #: Table id ("project.dataset.table") -> its fields in BigQuery's REST form.
    tables: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Where it was sent from (the test), for the failure message.
    origin: str = ""


def _stubs() -> tuple[Any, ...]:
    """The generated modules (local_service and the catalog, type and options protos), made
    with grpcio-tools into the cache on first use."""
    protos = package_dir() / "protos"
    if not (protos / "local_service.proto").exists():
        raise AnalyzerUnavailable(
            f"the ZetaSQL analyzer is not installed in {home()}: run {INSTALL}"
        )
    files = sorted(str(p.relative_to(protos)) for p in protos.rglob("*.proto"))
    digest = hashlib.sha256("".join(files).encode() + _grpc_tools_version().encode())
    for name in files:
        digest.update((protos / name).read_bytes())
    out = home() / f"python-{digest.hexdigest()[:16]}"
    if not (out / "local_service_pb2_grpc.py").exists():
        import grpc_tools

        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        well_known = Path(grpc_tools.__file__).parent / "_proto"
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{protos}", f"-I{well_known}",
               f"--python_out={tmp}", f"--grpc_python_out={tmp}", *files]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=protos, capture_output=True)
        try:
            tmp.rename(out)
        except OSError:  # another process made it first
            pass
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    return tuple(
        importlib.import_module(name)
        for name in (
            "local_service_pb2",
            "local_service_pb2_grpc",
            "zetasql.proto.simple_catalog_pb2",
            "zetasql.proto.options_pb2",
            "zetasql.public.options_pb2",
            "zetasql.public.type_pb2",
            "zetasql.public.simple_table_pb2",
            "zetasql.public.parse_resume_location_pb2",
        )
    )


def _grpc_tools_version() -> str:
    from importlib.metadata import version

    return version("grpcio-tools")


class Analyzer:
    """A running `local_service` server and a channel to it; `close()` stops the server."""

    def __init__(self, log: Path, port: int) -> None:
        import grpc

        (self.ls, self.lsg, self.sc, self.pop, self.op, self.tp, self.st, self.prl) = _stubs()
        server = package_dir() / "remote_server.so"
        if not os.access(server, os.X_OK):
            raise AnalyzerUnavailable(f"no ZetaSQL server at {server}: run {INSTALL}")
        self._log = log
        with log.open("wb") as out:
            self._proc = subprocess.Popen(
                [str(server), "127.0.0.1", str(port)], stdout=out, stderr=subprocess.STDOUT
            )
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        try:
            grpc.channel_ready_future(self._channel).result(timeout=60)
        except grpc.FutureTimeoutError as exc:
            self.close()
            raise RuntimeError(f"the ZetaSQL server did not start:\n{log.read_text()}") from exc
        self._stub = self.lsg.ZetaSqlLocalServiceStub(self._channel)
        self._language = self._language_options()

    def close(self) -> None:
        self._channel.close()
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    # --- options and catalog ---------------------------------------------------------------

    def _language_options(self) -> Any:
        features = self.op.LanguageFeature
        names = set(BIGQUERY_FEATURES) | {
            name
            for name in features.keys()
            if name.startswith("FEATURE_V_1_") and not any(n in name for n in NOT_BIGQUERY)
        }
        return self.pop.LanguageOptionsProto(
            product_mode=self.op.PRODUCT_EXTERNAL,
            name_resolution_mode=self.op.NAME_RESOLUTION_DEFAULT,
            enabled_language_features=sorted(features.Value(n) for n in names),
            # No statement kinds listed: every kind (DML, DDL, scripting, transactions).
        )

    def type_of(self, bq_type: str, mode: str = "NULLABLE", fields: Iterable[dict] = ()) -> Any:
        kind = TYPE_KINDS.get(bq_type.upper())
        if kind is None:
            raise ValueError(f"no ZetaSQL type for BigQuery type {bq_type}")
        if kind == "TYPE_STRUCT":
            inner = self.tp.StructTypeProto(
                field=[
                    self.tp.StructFieldProto(field_name=f["name"], field_type=self.column_type(f))
                    for f in fields
                ]
            )
            element = self.tp.TypeProto(type_kind=self.tp.TYPE_STRUCT, struct_type=inner)
        else:
            element = self.tp.TypeProto(type_kind=self.tp.TypeKind.Value(kind))
        if mode.upper() == "REPEATED":
            return self.tp.TypeProto(
                type_kind=self.tp.TYPE_ARRAY,
                array_type=self.tp.ArrayTypeProto(element_type=element),
            )
        return element

    def column_type(self, f: dict[str, Any]) -> Any:
        return self.type_of(f["type"], f.get("mode") or "NULLABLE", f.get("fields") or ())

    def catalog(self, tables: Mapping[str, list[dict[str, Any]]]) -> Any:
        protos = [
            self.st.SimpleTableProto(
                name=name,
                column=[
                    self.st.SimpleColumnProto(name=f["name"], type=self.column_type(f))
                    for f in fields
                ],
            )
            for name, fields in sorted(tables.items())
        ]
        return self.sc.SimpleCatalogProto(
            name="bigquery",
            table=protos,
            builtin_function_options=self.pop.ZetaSQLBuiltinFunctionOptionsProto(
                language_options=self._language
            ),
        )

    def options(self, params: Mapping[str, str]) -> Any:
        return self.pop.AnalyzerOptionsProto(
            language_options=self._language,
            query_parameters=[
                self.pop.AnalyzerOptionsProto.QueryParameterProto(
                    name=name, type=self.type_of(kind)
                )
                for name, kind in sorted(params.items())
            ],
            error_message_mode=self.op.ERROR_MESSAGE_ONE_LINE,
            default_timezone="UTC",
        )

    # --- analysis ----------------------------------------------------------------------------

    def problems(self, statement: Statement) -> list[str]:
        """Why ZetaSQL rejects each statement of `statement.sql` (empty: all resolve)."""
        import grpc

        catalog = self.catalog(statement.tables)
        options = self.options(statement.params)
        sql = statement.sql
        data = sql.encode()
        position = 0
        found = []
        while data[position:].strip(b" \t\r\n;"):
            request = self.ls.AnalyzeRequest(
                options=options,
                simple_catalog=catalog,
                parse_resume_location=self.prl.ParseResumeLocationProto(
                    input=sql, byte_position=position, allow_resume=True
                ),
            )
            try:
                answer = self._stub.Analyze(request, timeout=60)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                found.append(exc.details())
                break  # the rest of a script cannot be located once one statement fails
            if answer.resume_byte_position <= position:
                break
            position = answer.resume_byte_position
        return found


def start(log_dir: Path) -> Analyzer:
    """Start the analyzer on a free port (logs in `log_dir`)."""
    from tests.services import free_port

    port = free_port()
    started = time.monotonic()
    analyzer = Analyzer(log_dir / "zetasql-server.log", port)
    analyzer.started_in = time.monotonic() - started
    return analyzer
