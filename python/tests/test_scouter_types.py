"""Every type the published scouter-ml 0.25.0 client writes, through its own
producer and back through its own read() and sql(): strings (string_view),
ints, floats (extremes, -0.0; NaN and ±inf cannot be sent: the client
serialises records with model_dump_json, which writes them as null), bools, UTC datetimes, dates, enums and
literals (dictionary<int16, utf8>), Optional, lists of strings and floats,
nested models, defaults (lists of models and of lists: the 0.25.0 client itself
cannot build them, "Cannot create list item builder for Struct(...)/List(...)"); edge values ("" and "NULL" strings, NUL bytes in
strings, empty lists, large ints). Runs under .venv-scouter (make test-scouter)."""
from __future__ import annotations

import datetime as dt
import enum
import math
import time
from typing import List, Literal, Optional

import pytest

from scouter_wire import require_real_scouter

require_real_scouter()

from pydantic import BaseModel  # noqa: E402

from scouter import GrpcConfig  # noqa: E402
from scouter.bifrost import DatasetClient, DatasetProducer, TableConfig, WriteConfig  # noqa: E402

UTC = dt.timezone.utc


class Level(str, enum.Enum):
    low = "low"
    high = "high"


class Point(BaseModel):
    x: float
    label: Optional[str] = None


class Everything(BaseModel):
    id: int
    text: str
    ratio: float
    flag: bool
    at: dt.datetime
    day: dt.date
    level: Level
    kind: Literal["a", "b"]
    maybe: Optional[int] = None
    tags: List[str] = []
    scores: List[float] = []
    origin: Point
    note: Optional[str] = None


def make(i: int) -> Everything:
    texts = ["", "NULL", "nul\x00byte", "\u00fcnic\u00f6de \U0001F600", "x" * 10_000]
    ratios = [0.0, -0.0, 1.7976931348623157e308, -1e308, 5e-324, 1.5, -2.25]
    return Everything(
        id=[0, -(2**63), 2**63 - 1, 10**6][i] if i < 4 else i,
        text=texts[i % len(texts)], ratio=ratios[i % len(ratios)], flag=bool(i % 2),
        at=dt.datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC) + dt.timedelta(seconds=i),
        day=dt.date(1970, 1, 1) + dt.timedelta(days=i * 400),
        level=Level.high if i % 3 else Level.low, kind="a" if i % 2 else "b",
        maybe=None if i % 2 else i, tags=[] if i % 4 == 0 else [f"t{i}", ""],
        scores=[float(i), -1.5] if i % 2 else [],
        origin=Point(x=0.5, label=None if i % 2 else "o"), note=None)


def test_every_type_round_trips_through_the_published_client(server, unique_table):
    transport = GrpcConfig(server_uri=f"http://{server.uri}")
    config = TableConfig(Everything, catalog="types", schema_name="s", table=unique_table,
                         partition_columns=["level"])
    producer = DatasetProducer(config, transport, WriteConfig(batch_size=50, scheduled_delay_secs=1))
    assert producer.register() == "created"
    sent = [make(i) for i in range(120)]
    for record in sent:
        producer.insert(record)
    producer.flush()
    client = DatasetClient(transport=transport, table_config=config)
    deadline = time.monotonic() + 60
    while len(client.read()) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.1)
    got = {r.id: r for r in client.read()}
    assert len(got) == len(sent)
    for record in sent:
        back = got[record.id]
        assert back.model_dump(exclude={"ratio"}) == record.model_dump(exclude={"ratio"}), record.id
        assert back.ratio == record.ratio and math.copysign(1, back.ratio) == \
            math.copysign(1, record.ratio)
    table = client.sql(f"SELECT level, count(*) AS n FROM {config.fqn} GROUP BY level "
                       "ORDER BY level").to_arrow()
    assert table.column("n").to_pylist() == [80, 40]  # high, low
    producer.shutdown()
