"""fork() never breaks the parent's producer or client (issue 12, item 2c): the
parent's producer has not sent anything yet when a forked child makes gRPC calls
(its own producer, as the README recommends, or a query)."""
from __future__ import annotations

import os

import pytest

from bifrost import DatasetClient, DatasetProducer, TableConfig, WriteConfig

from models import Event, make_events


def cfg(table: str) -> TableConfig:
    return TableConfig(Event, catalog="test", schema_name="fork", table=table, partition_columns=["category"])


def run_child(body) -> int:
    pid = os.fork()
    if pid == 0:  # the child: report through the exit status only
        code = 1
        try:
            body()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("child_does", ["producer", "query"])
def test_fork_does_not_break_the_parent(grpc, unique_table, child_does):
    parent_cfg, child_cfg = cfg(unique_table), cfg(unique_table + "_child")
    producer = DatasetProducer(parent_cfg, grpc, WriteConfig(scheduled_delay_secs=3600))
    client = DatasetClient(grpc, parent_cfg)
    events = make_events(8)
    for e in events[:4]:
        producer.insert(e)  # queued, not sent: the parent has not used its channel yet

    def child() -> None:
        if child_does == "producer":
            with DatasetProducer(child_cfg, grpc) as own:
                own.insert(events[0])
                assert own.flush(timeout=30) == 1
        else:
            DatasetClient(transport=grpc).sql("SELECT 1 AS one").to_arrow()

    assert run_child(child) == 0
    for e in events[4:]:
        producer.insert(e)
    assert producer.flush(timeout=30) == 8
    stats = producer.stats()
    assert stats["acknowledged"] == 8 and stats["failed"] == 0
    assert len(client.read()) == 8
    producer.shutdown()
