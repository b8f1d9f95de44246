"""read(where=...) cannot change the statement's shape: the condition is lexed on the
client (strings, quoted identifiers, dollar quotes skipped as units) and refused when
it closes the WHERE's parenthesis, comments out the rest or starts a new statement."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from bifrost import DatasetClient, DatasetProducer, InvalidConditionError, QueryError, TableConfig
from bifrost._sql import check_condition


class Note(BaseModel):
    id: int
    text: str


class Secret(BaseModel):
    id: int
    text: str


NOTES = [Note(id=i, text=t) for i, t in enumerate(
    ["plain", "has ) paren", "has -- dashes", "it's quoted", "/* not a comment */", "semi;colon", "back\\slash"])]


@pytest.fixture(scope="module")
def tables(server):
    from bifrost import GrpcConfig

    grpc = GrpcConfig(server_uri=server.uri)
    notes = TableConfig(Note, "test", "where_guard", "notes")
    secrets = TableConfig(Secret, "test", "where_guard", "secrets")
    with DatasetProducer(notes, grpc) as producer:
        producer.insert_many(NOTES)
        producer.flush()
    with DatasetProducer(secrets, grpc) as producer:
        producer.insert_many([Secret(id=100 + i, text=f"secret {i}") for i in range(5)])
        producer.flush()
    return DatasetClient(grpc, notes)


def test_closing_the_parenthesis_cannot_drop_the_limit(tables):
    with pytest.raises(InvalidConditionError, match="parenthesis"):
        tables.read(where="1=1) --", limit=2)
    with pytest.raises(InvalidConditionError, match="parenthesis"):
        tables.read(where="1=1) OR (1=1", limit=2)
    assert len(tables.read(where="1=1", limit=2)) == 2


def test_union_with_another_table_is_refused(tables):
    for where in ["1=0) UNION ALL SELECT id, text FROM test.where_guard.secrets --",
                  "1=0) UNION ALL SELECT id, text FROM test.where_guard.secrets /* */",
                  "1=0) UNION ALL (SELECT id, text FROM test.where_guard.secrets"]:
        with pytest.raises(InvalidConditionError) as info:
            tables.read(where=where)
        assert isinstance(info.value, ValueError) and isinstance(info.value, QueryError)


@pytest.mark.parametrize("where, why", [
    ("id = 1; DROP TABLE x", "';'"),
    ("id = 1 -- rest", "comment"),
    ("id = 1 /* rest */", "comment"),
    ("(id = 1", "open"),
    ("id = 1)", "did not open"),
    ("text = 'unterminated", "unterminated string"),
    ('"unterminated = 1', "unterminated quoted identifier"),
    ("text = $$open", "unterminated dollar"),
    ("", "empty"),
    ("   ", "empty"),
    ("id = 1\x00", "NUL"),
])
def test_malformed_conditions_name_the_problem(tables, where, why):
    with pytest.raises(InvalidConditionError, match=why):
        tables.read(where=where)


@pytest.mark.parametrize("where, expected", [
    ("text = 'has ) paren'", ["has ) paren"]),
    ("text = 'has -- dashes'", ["has -- dashes"]),
    ("text = 'it''s quoted'", ["it's quoted"]),
    ("text = '/* not a comment */'", ["/* not a comment */"]),
    ("text = 'semi;colon'", ["semi;colon"]),
    ("text = E'it\\'s quoted'", ["it's quoted"]),
    ("text = $$has ) paren$$", ["has ) paren"]),
    ("text = $q$semi;colon$q$", ["semi;colon"]),
    ('"text" = \'plain\'', ["plain"]),
    ("(id = 0 OR (id = 1)) AND text <> ''", ["plain", "has ) paren"]),
    ("id IN (SELECT 2)", ["has -- dashes"]),
])
def test_ordinary_conditions_with_tricky_strings_work(tables, where, expected):
    rows = tables.read(where=where)
    assert sorted(r.text for r in rows) == sorted(expected)


def test_placeholders_still_bind(tables):
    assert [r.text for r in tables.read(where="text = ? AND id = $2", params=["it's quoted", 3])] == ["it's quoted"]


def test_lexer_units():
    assert check_condition("  a = 1  ") == "a = 1"
    assert check_condition("a = $1") == "a = $1"
    assert check_condition("price$ = 1") == "price$ = 1"
    with pytest.raises(TypeError):
        check_condition(1)  # type: ignore[arg-type]
