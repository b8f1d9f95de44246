"""Batches are bounded by bytes as well as rows (issue 12, item 1): large records
are delivered in several batches under the transport limit; a record no batch can
hold is refused at once with RecordTooLargeError, counted, and blocks nothing."""
from __future__ import annotations

from typing import Optional

import pyarrow as pa
import pytest
from pydantic import BaseModel

from bifrost import (BifrostError, DatasetClient, DatasetProducer, RecordTooLargeError, TableConfig,
                     WriteConfig)


class Blob(BaseModel):
    id: int
    text: str
    note: Optional[str] = None


def cfg(table: str) -> TableConfig:
    return TableConfig(Blob, catalog="test", schema_name="limits", table=table)


def count(grpc, config: TableConfig) -> tuple:
    table = DatasetClient(transport=grpc).sql(
        f"SELECT count(*) AS n, sum(length(text)) AS chars FROM {config.fqn}").to_arrow()
    return table.column("n")[0].as_py(), table.column("chars")[0].as_py()


def test_thousand_records_of_300_kb_are_all_stored(grpc, unique_table):
    config = cfg(unique_table)
    text = "x" * 300_000
    with DatasetProducer(config, grpc, WriteConfig(batch_size=1000, scheduled_delay_secs=3600)) as producer:
        for i in range(1000):
            producer.insert(Blob(id=i, text=text))
        assert producer.flush(timeout=300) == 1000
        stats = producer.stats()
    assert stats["failed"] == 0 and stats["acknowledged"] == 1000
    assert stats["sent_batches"] >= 5  # 300 MB cut into batches of at most 64 MiB
    assert count(grpc, config) == (1000, 300_000_000)


def test_insert_arrow_splits_large_inputs_under_the_limit(grpc, unique_table):
    config = cfg(unique_table)
    table = pa.table({"id": list(range(1000)), "text": ["y" * 300_000] * 1000})
    with DatasetProducer(config, grpc, WriteConfig(batch_size=1000)) as producer:
        assert producer.insert_arrow(table) == 1000
        assert producer.flush(timeout=300) == 1000
        assert producer.stats()["sent_batches"] >= 5
    assert count(grpc, config) == (1000, 300_000_000)


def test_a_record_larger_than_any_batch_is_refused_at_once(grpc, unique_table):
    config = cfg(unique_table)
    with DatasetProducer(config, grpc, WriteConfig(scheduled_delay_secs=3600)) as producer:
        producer.insert(Blob(id=1, text="before"))
        with pytest.raises(RecordTooLargeError, match=r"300000\d+ bytes.*max_batch_bytes=67108864") as info:
            producer.insert(Blob(id=2, text="z" * 300_000_000))
        assert isinstance(info.value, BifrostError)
        producer.insert(Blob(id=3, text="after"))
        assert producer.flush(timeout=60) == 2  # nothing failed, nothing retried
        stats = producer.stats()
        assert stats["too_large"] == 1 and stats["failed"] == 0 and stats["retried"] == 0
        assert stats["inserted"] == stats["acknowledged"] == 2
    assert count(grpc, config) == (2, len("before") + len("after"))


def test_max_batch_bytes_is_configurable_and_bounded(grpc, unique_table):
    config = cfg(unique_table)
    with pytest.raises(ValueError, match="max_batch_bytes"):
        WriteConfig(max_batch_bytes=200 * 1024 * 1024)
    with DatasetProducer(config, grpc, WriteConfig(max_batch_bytes=100_000, scheduled_delay_secs=3600)) as producer:
        for i in range(10):
            producer.insert(Blob(id=i, text="w" * 30_000))
        with pytest.raises(RecordTooLargeError):
            producer.insert(Blob(id=99, text="w" * 200_000))
        with pytest.raises(RecordTooLargeError) as info:
            producer.insert_many([Blob(id=200, text="u"), Blob(id=201, text="u" * 200_000), Blob(id=202, text="u")])
        assert info.value.rows_queued == 2  # the records around the big one are queued
        rows = pa.table({"id": [100, 101, 102], "text": ["v", "v" * 200_000, "v"]})
        with pytest.raises(RecordTooLargeError) as info:
            producer.insert_arrow(rows)
        assert info.value.rows_queued == 2  # the rows around the big one are queued
        assert producer.flush(timeout=60) == 14
        stats = producer.stats()
        assert stats["sent_batches"] >= 4 and stats["too_large"] == 3
    assert count(grpc, config)[0] == 14
