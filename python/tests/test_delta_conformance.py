"""Delta conformance: one table with every type and awkward partition values
("NULL", "null", spaces, '/', '=', '%', '#?&', unicode, real nulls), written by
several flushes, appended to by delta-rs with a schema merge, compacted,
checkpointed and vacuumed. After each step delta-rs, Polars, DataFusion and
DuckDB's delta_scan must return the same rows as the server's own SQL, value for
value, and the server's rows must equal the inserted records."""
from __future__ import annotations

import datetime as dt
import enum
import gc
import json
import math
import time
from pathlib import Path
from typing import List, Literal, Optional

import pyarrow as pa
import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, GrpcConfig, TableConfig, WriteConfig

from conftest import ServerProcess

deltalake = pytest.importorskip("deltalake")
pl = pytest.importorskip("polars")
datafusion = pytest.importorskip("datafusion")
duckdb = pytest.importorskip("duckdb")

UTC = dt.timezone.utc
REGIONS = ["NULL", "null", "a b", " lead", "x/y", "k=v", "50%", "#?&", "ünï ✓ 😀", None, "plain"]


class Tier(str, enum.Enum):
    free = "free"
    pro = "pro"


class Inner(BaseModel):
    on: bool
    score: Optional[float] = None
    label: Optional[str] = None


class Row(BaseModel):
    id: int
    region: Optional[str] = None
    kind: str  # a required partition column holding the string "NULL"
    text: str
    amount: float
    flag: bool
    maybe_flag: Optional[bool] = None
    at: dt.datetime
    day: dt.date
    maybe: Optional[int] = None
    tags: List[str]
    inner: Inner
    opt_inner: Optional[Inner] = None
    tier: Tier
    mode: Literal["a", "b"]
    points: List[Inner]
    grid: List[List[int]]


COLUMNS = list(Row.model_fields)


def make_rows(start: int, n: int) -> list[Row]:
    texts = ["", "ascii", "quote ' \" \\", "long " * 30, "ünïcödé", "tab\tnew\nline", "nul\x00byte"]
    amounts = [0.0, -0.0, 1.5, -1e308, 1e308, 5e-324, 1 / 3]
    ats = [dt.datetime(1970, 1, 1, tzinfo=UTC), dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
           dt.datetime(1901, 12, 13, 20, 45, 52, 1, tzinfo=UTC),
           dt.datetime(2026, 11, 22, 13, 0, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5)))]
    rows = []
    for i in range(start, start + n):
        rows.append(Row(
            id=i, region=REGIONS[i % len(REGIONS)], kind="NULL" if i % 2 else "k", text=texts[i % len(texts)],
            amount=amounts[i % len(amounts)], flag=i % 2 == 0,
            maybe_flag=None if i % 3 == 0 else i % 5 == 0, at=ats[i % len(ats)],
            day=dt.date(1, 1, 1) if i % 7 == 0 else dt.date(2024, 1, 1 + i % 28),
            maybe=None if i % 4 == 0 else (2**63 - 1 if i % 4 == 1 else -(2**63)),
            tags=[str(j) for j in range(i % 3)],
            inner=Inner(on=i % 3 == 0, score=None if i % 2 else i / 8, label=None if i % 5 else "L"),
            opt_inner=None if i % 2 else Inner(on=False, score=-i, label="o"),
            tier=Tier.pro if i % 3 else Tier.free, mode="a" if i % 2 else "b",
            points=[Inner(on=j % 2 == 0, score=j) for j in range(i % 3)],
            grid=[[j, -j] for j in range(i % 2 + 1)],
        ))
    return rows


def norm(value):
    """A value comparable across readers: timestamps in UTC, NaN as a marker."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    return value


def rows_of(table: pa.Table, columns=COLUMNS) -> list[dict]:
    out = [{c: norm(r[c]) for c in columns} for r in table.select(columns).to_pylist()]
    return sorted(out, key=lambda r: r["id"])


def expected_rows(rows: list[Row]) -> list[dict]:
    return sorted(({c: norm(v) for c, v in r.model_dump().items()} for r in rows), key=lambda r: r["id"])


def by_deltalake(path: Path) -> pa.Table:
    table = deltalake.DeltaTable(str(path)).to_pyarrow_table()
    gc.collect()
    return table


def by_polars(path: Path) -> pa.Table:
    return pl.read_delta(str(path)).to_arrow()


def by_datafusion(path: Path) -> pa.Table:
    ctx = datafusion.SessionContext()
    ctx.register_table("t", deltalake.DeltaTable(str(path)))
    return ctx.sql("SELECT * FROM t").to_arrow_table()


def duckdb_delta_extension() -> Path:
    import duckdb_ext

    ext = (Path(list(duckdb_ext.__path__)[0]) / "extensions" / f"v{duckdb.__version__}" / "linux_amd64"
           / "delta.duckdb_extension")
    assert ext.is_file(), f"duckdb-ext-delta has no extension for duckdb {duckdb.__version__}: {ext}"
    return ext


def by_duckdb(path: Path) -> pa.Table:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        con.execute(f"LOAD '{duckdb_delta_extension()}'")
        con.execute("SET TimeZone = 'UTC'")
        return con.execute("SELECT * FROM delta_scan(?)", [str(path)]).fetch_arrow_table()
    finally:
        con.close()


READERS = {"deltalake": by_deltalake, "polars": by_polars, "datafusion": by_datafusion, "duckdb": by_duckdb}


class Scenario:
    ARGS = ["--maintenance-interval", "0", "--flush-interval", "3600", "--checkpoint-interval", "0",
            "--unsafe-short-retention"]  # vacuum at retention 0 below

    def __init__(self, tmp_path: Path):
        # No automatic maintenance: each step below is forced through MaintainTable.
        self.data_dir = tmp_path / "data"
        self.server = ServerProcess(self.data_dir, args=self.ARGS)
        self.grpc = GrpcConfig(server_uri=self.server.uri)
        self.cfg = TableConfig(Row, catalog="conf", schema_name="delta", table="rows", partition_columns=["region", "kind"])
        self._client: Optional[DatasetClient] = None
        self.rows: list[Row] = []
        self.path: Optional[Path] = None

    def restart(self) -> None:
        self.server.stop()
        assert self.server.proc.returncode == 0, self.server.log()
        self.server = ServerProcess(self.data_dir, args=self.ARGS)
        self.grpc = GrpcConfig(server_uri=self.server.uri)
        self._client = None

    @property
    def client(self) -> DatasetClient:  # the table exists once the first producer registered it
        if self._client is None:
            self._client = DatasetClient(self.grpc, self.cfg)
        return self._client

    def insert(self, rows: list[Row]) -> None:
        with DatasetProducer(self.cfg, self.grpc, WriteConfig(batch_size=40)) as producer:
            producer.insert_many(rows)
            assert producer.flush() == len(rows)
        self.rows += rows

    def maintain(self, *ops: str, retention_hours=None) -> dict:
        return self.client.maintain_dataset("conf", "delta", "rows", list(ops), retention_hours=retention_hours)

    def server_table(self) -> pa.Table:
        return self.client.sql(f"SELECT * FROM {self.cfg.fqn}").to_arrow()

    def log_actions(self) -> list[dict]:
        return [json.loads(line) for f in sorted((self.path / "_delta_log").glob("*.json"))
                for line in f.read_text().splitlines()]

    def check_readers(self, columns=COLUMNS) -> list[dict]:
        server = rows_of(self.server_table(), columns)
        for name, read in READERS.items():
            got = rows_of(read(self.path), columns)
            assert len(got) == len(server), f"{name}: {len(got)} rows, the server has {len(server)}"
            for g, s in zip(got, server):
                assert g == s, f"{name} disagrees with the server's SQL:\n{g}\n{s}"
        return server


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    sc = Scenario(tmp_path_factory.mktemp("conformance"))
    yield sc
    sc.server.stop()
    assert sc.server.proc.returncode == 0, sc.server.log()


def test_1_flushes_every_reader_agrees(scenario):
    sc = scenario
    for k in range(3):  # several flushes: several files per partition
        sc.insert(make_rows(k * 66, 66))
        assert sc.maintain("flush")["rows_flushed"] == 66
    sc.path = Path(sc.server.data_dir) / sc.client.describe_dataset("conf", "delta", "rows")["location"]
    server = sc.check_readers()
    assert server == expected_rows(sc.rows)


def test_2_partition_values_null_and_the_string_null(scenario):
    sc = scenario
    adds = [a["add"] for a in sc.log_actions() if "add" in a]
    values = {a["partitionValues"]["region"] for a in adds}
    assert values == set(REGIONS)  # "NULL" and "null" are strings, None is JSON null
    for a in adds:
        first_dir = a["path"].split("/")[1]
        if a["partitionValues"]["region"] is None:
            assert first_dir == "region=__HIVE_DEFAULT_PARTITION__"
    schema = json.loads(next(a["metaData"]["schemaString"] for a in sc.log_actions() if "metaData" in a))
    region = next(f for f in schema["fields"] if f["name"] == "region")
    assert region["nullable"] is True
    kind = next(f for f in schema["fields"] if f["name"] == "kind")
    assert kind["nullable"] is False
    assert {a["partitionValues"]["kind"] for a in adds} == {"NULL", "k"}
    got = sc.client.sql(f"SELECT count(*) AS n FROM {sc.cfg.fqn} WHERE kind = 'NULL'").to_arrow()
    assert got.column("n")[0].as_py() == sum(r.kind == "NULL" for r in sc.rows) > 0
    got = sc.client.sql(f"SELECT count(*) AS n FROM {sc.cfg.fqn} WHERE region = 'NULL'").to_arrow()
    assert got.column("n")[0].as_py() == sum(r.region == "NULL" for r in sc.rows)
    got = sc.client.sql(f"SELECT count(*) AS n FROM {sc.cfg.fqn} WHERE region IS NULL").to_arrow()
    assert got.column("n")[0].as_py() == sum(r.region is None for r in sc.rows)


def test_3_statistics_per_file_exact(scenario):
    """add.stats per file: exact nullCount (also with several files in a partition),
    nested struct leaves, booleans, timestamps in milliseconds that still bound the
    data, no bounds for NaN/infinity; checked against each file's data."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from urllib.parse import unquote

    sc = scenario
    adds = [a["add"] for a in sc.log_actions() if "add" in a]
    for add in adds:
        stats = json.loads(add["stats"])
        data = pq.read_table(sc.path / unquote(add["path"]))
        assert stats["numRecords"] == data.num_rows
        for col in ("id", "text", "amount", "flag", "maybe_flag", "at", "day", "maybe", "tier", "mode"):
            assert stats["nullCount"][col] == data.column(col).null_count, col
        tiers = data.column("tier").cast(pa.string()).to_pylist()
        assert stats["minValues"]["tier"] == min(tiers) and stats["maxValues"]["tier"] == max(tiers)
        inner = data.column("inner").combine_chunks()
        for leaf in ("on", "score", "label"):
            assert stats["nullCount"]["inner"][leaf] == inner.field(leaf).null_count
            assert stats["nullCount"]["opt_inner"][leaf] == pc.struct_field(
                data.column("opt_inner"), leaf).null_count + 0
        for col in ("id", "day", "maybe", "flag", "maybe_flag"):
            values = data.column(col).drop_null()
            if len(values) == 0:
                assert col not in stats["minValues"]
                continue
            lo, hi = stats["minValues"][col], stats["maxValues"][col]
            if col == "day":
                lo, hi = dt.date.fromisoformat(lo), dt.date.fromisoformat(hi)
            assert lo == pc.min(values).as_py() and hi == pc.max(values).as_py(), col
        texts = data.column("text").to_pylist()
        if "text" in stats["minValues"]:  # strings over 64 bytes get no bounds
            assert stats["minValues"]["text"] == min(texts) and stats["maxValues"]["text"] == max(texts)
        else:
            assert any(len(t.encode()) > 64 or "\x00" in t for t in texts)
        ats = data.column("at")
        lo = dt.datetime.fromisoformat(stats["minValues"]["at"].replace("Z", "+00:00"))
        hi = dt.datetime.fromisoformat(stats["maxValues"]["at"].replace("Z", "+00:00"))
        assert lo.microsecond % 1000 == 0 and hi.microsecond % 1000 == 0
        assert lo <= pc.min(ats).as_py() and hi >= pc.max(ats).as_py()
        assert hi - pc.max(ats).as_py() < dt.timedelta(milliseconds=1)
        amounts = [v for v in data.column("amount").to_pylist()]
        if any(math.isnan(v) or math.isinf(v) for v in amounts):
            assert "amount" not in stats["minValues"]
        else:
            assert stats["minValues"]["amount"] == min(amounts)
        on = data.column("inner").combine_chunks().field("on").to_pylist()
        assert stats["minValues"]["inner"]["on"] == min(on) and stats["maxValues"]["inner"]["on"] == max(on)
        for col in ("tags", "points", "grid"):
            assert col not in stats["minValues"]
        assert "region" not in stats["nullCount"] and "kind" not in stats["nullCount"]
    assert any(len([b for b in adds if b["partitionValues"] == a["partitionValues"]]) > 1 for a in adds)


def test_4_commit_info_as_spark_and_delta_rs_read_it(scenario):
    sc = scenario
    infos = [a["commitInfo"] for a in sc.log_actions() if "commitInfo" in a]
    assert infos[0]["operation"] == "CREATE TABLE"
    assert infos[0]["operationParameters"]["partitionBy"] == '["scouter_partition_date","region","kind"]'
    for info in infos:
        assert all(isinstance(v, str) for v in info["operationParameters"].values())
        assert info["engineInfo"].startswith("bifrost-server/")
        assert isinstance(info["isBlindAppend"], bool)
    writes = [i for i in infos if i["operation"] == "WRITE"]
    assert len(writes) == 3
    for version, info in enumerate(writes, start=1):
        assert info["readVersion"] == version - 1
        assert info["operationParameters"] == {"mode": "Append",
                                               "partitionBy": '["scouter_partition_date","region","kind"]'}
        assert info["operationMetrics"]["numOutputRows"] == "66"
        flushed = [r for r in sc.rows if (version - 1) * 66 <= r.id < version * 66]
        assert int(info["operationMetrics"]["numFiles"]) == len({(r.region, r.kind) for r in flushed})
        assert int(info["operationMetrics"]["numOutputBytes"]) > 0
    history = deltalake.DeltaTable(str(sc.path)).history()
    assert [h["operation"] for h in history][:3] == ["WRITE", "WRITE", "WRITE"]


def test_5_empty_or_nul_partition_value_is_refused(scenario):
    sc = scenario
    bad = make_rows(10_000, 1)[0].model_copy(update={"region": ""})
    from bifrost import BifrostError

    with DatasetProducer(sc.cfg, sc.grpc, WriteConfig(batch_size=1)) as producer:
        producer.insert(bad)
        with pytest.raises(BifrostError, match="partition column 'region' has an empty string"):
            producer.flush()
        producer.insert(bad.model_copy(update={"region": "a\x00b"}))
        with pytest.raises(BifrostError, match="partition column 'region' has a value with a NUL byte"):
            producer.flush()
    n = sc.client.sql(f"SELECT count(*) AS n FROM {sc.cfg.fqn} WHERE id = 10000").to_arrow()
    assert n.column("n")[0].as_py() == 0


def test_6_external_merge_append_then_optimize_keeps_every_column(scenario):
    sc = scenario
    before = by_deltalake(sc.path)
    extra = before.slice(0, 30)
    extra = extra.set_column(extra.schema.get_field_index("id"), "id",
                             pa.compute.add(extra.column("id"), pa.scalar(1_000_000, pa.int64())))
    extra = extra.append_column("extra_col", pa.array([f"e{i}" for i in range(30)], pa.string()))
    deltalake.write_deltalake(str(sc.path), extra, mode="append", schema_mode="merge")
    external_ids = set(extra.column("id").to_pylist())
    del before
    gc.collect()
    # The server picks up the other writer's commit (it re-reads the log every second).
    deadline = time.monotonic() + 30
    while True:
        n = sc.client.sql(f"SELECT count(*) AS n FROM {sc.cfg.fqn} WHERE id >= 1000000").to_arrow()
        if n.column("n")[0].as_py() == 30 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert n.column("n")[0].as_py() == 30
    sc.insert(make_rows(500, 66))
    assert sc.maintain("flush")["rows_flushed"] == 66
    version_before = deltalake.DeltaTable(str(sc.path)).version()
    done = sc.maintain("optimize")
    assert done["files_removed"] > 0 and done["delta_version"] == version_before + 1  # one commit
    optimize = [a["commitInfo"] for a in sc.log_actions() if "commitInfo" in a][-1]
    assert optimize["operation"] == "OPTIMIZE" and optimize["isBlindAppend"] is False
    assert int(optimize["operationMetrics"]["numRemovedFiles"]) == done["files_removed"]
    table = by_deltalake(sc.path)
    extra_values = {r["id"]: r["extra_col"] for r in table.select(["id", "extra_col"]).to_pylist()}
    assert {i: v for i, v in extra_values.items() if v is not None} == {
        i: f"e{k}" for k, i in enumerate(extra.column("id").to_pylist())}
    assert set(extra_values) >= external_ids
    server = sc.check_readers()
    ours = [r for r in server if r["id"] < 1_000_000]
    assert ours == expected_rows(sc.rows)


def test_7_checkpoint_and_vacuum(scenario):
    sc = scenario
    done = sc.maintain("checkpoint")
    last = json.loads((sc.path / "_delta_log" / "_last_checkpoint").read_text())
    assert last["version"] == done["checkpoint_version"]
    checkpoint = sc.path / "_delta_log" / f"{last['version']:020d}.checkpoint.parquet"
    assert last["sizeInBytes"] == checkpoint.stat().st_size
    import pyarrow.parquet as pq

    assert last["numOfAddFiles"] == pq.read_table(checkpoint).column("add").drop_null().length()
    assert last["numOfAddFiles"] == len(deltalake.DeltaTable(str(sc.path)).file_uris())
    assert sc.maintain("vacuum", retention_hours=0)["files_deleted"] > 0
    server = sc.check_readers()
    assert [r for r in server if r["id"] < 1_000_000] == expected_rows(sc.rows)
    # A restarted server loads the table from its checkpoint: same rows.
    sc.restart()
    assert sc.check_readers() == server


def test_8_no_compaction_once_another_writer_adds_reader_features(scenario):
    """Deletion vectors (reader version 3) would be ignored by a rewrite, which could
    bring deleted rows back: the server refuses to compact, with a clear error."""
    from bifrost import BifrostError

    sc = scenario
    sc.insert(make_rows(700, 22))
    sc.maintain("flush")
    sc.insert(make_rows(800, 22))
    sc.maintain("flush")
    table = deltalake.DeltaTable(str(sc.path))
    table.alter.add_feature(feature=deltalake.TableFeatures.DeletionVectors,
                            allow_protocol_versions_increase=True)
    with pytest.raises(BifrostError, match="refusing to compact: .* needs reader features"):
        sc.maintain("optimize")
    assert not any("remove" in a for a in sc.log_actions()[-3:])
    # Appends of plain files stay allowed with deletion vectors on.
    sc.insert(make_rows(900, 22))
    assert sc.maintain("flush")["rows_flushed"] == 22
    ids = sc.client.sql(f"SELECT id FROM {sc.cfg.fqn} WHERE id >= 900 AND id < 1000 ORDER BY id").to_arrow()
    assert ids.column("id").to_pylist() == list(range(900, 922))
    added = [a["add"] for a in sc.log_actions()[-40:] if "add" in a]
    assert sum(json.loads(a["stats"])["numRecords"] for a in added if a["dataChange"]) >= 22


def test_9_no_writes_once_another_writer_turns_on_column_mapping(scenario):
    """With column mapping, readers find columns by physical name: files written
    with logical names would read as nulls. The server refuses to flush into such a
    table (clear error, rows kept and still queryable through the server)."""
    from bifrost import BifrostError

    sc = scenario
    log = sc.path / "_delta_log"
    version = deltalake.DeltaTable(str(sc.path)).version() + 1
    metadata = next(a["metaData"] for a in reversed(sc.log_actions()) if "metaData" in a)
    metadata = dict(metadata, configuration={**metadata["configuration"], "delta.columnMapping.mode": "name",
                                             "delta.columnMapping.maxColumnId": "0"})
    protocol = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["columnMapping"],
                "writerFeatures": ["columnMapping"]}
    (log / f"{version:020d}.json").write_text(
        json.dumps({"commitInfo": {"timestamp": int(time.time() * 1000), "operation": "SET TBLPROPERTIES",
                                   "operationParameters": {}}}) + "\n"
        + json.dumps({"protocol": protocol}) + "\n" + json.dumps({"metaData": metadata}) + "\n")
    sc.insert(make_rows(1000, 5))
    with pytest.raises(BifrostError, match="refusing to append: .*columnMapping"):
        sc.maintain("flush")
    assert not (log / f"{version + 1:020d}.json").exists()  # nothing committed
    ids = sc.client.sql(f"SELECT id FROM {sc.cfg.fqn} WHERE id >= 1000 AND id < 1005 ORDER BY id").to_arrow()
    assert ids.column("id").to_pylist() == list(range(1000, 1005))
