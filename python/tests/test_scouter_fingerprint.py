"""The scouter-ml 0.25.0 fingerprint rule (src/schema/schema_scouter.c) against the
published package's own TableConfig.compute_fingerprint, over 250 generated
Pydantic models: every supported type, nested models, lists of anything, Optional,
defaults, enums and literals, names whose sort order differs between entries and
names. The server's value comes from RegisterDataset, the call the client checks
it with. Runs under .venv-scouter (make test-scouter)."""
from __future__ import annotations

import datetime as dt
import enum
import json
import random
from collections import Counter
from typing import List, Literal, Optional

import pytest

from scouter_wire import Wire, require_real_scouter

require_real_scouter()

import grpc  # noqa: E402
from pydantic import BaseModel, create_model  # noqa: E402

from scouter.bifrost import TableConfig  # noqa: E402

# Names chosen so that sorting whole "name:TYPE:nullable" entries differs from
# sorting names ("a" < "a0" but "a:" > "a0"), plus case and non-ASCII.
NAMES = ["a", "a0", "a_b", "ab", "Zed", "B", "z", "value", "x1", "x10", "x_", "tags", "n\u00e9",
         "\u00fcber", "id", "ts", "d", "f", "s", "k", "m", "q"]


class Color(str, enum.Enum):
    red = "red"
    blue = "blue"


SCALARS = {
    "str": (str, "s"), "int": (int, 1), "float": (float, 1.5), "bool": (bool, True),
    "datetime": (dt.datetime, dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)),
    "date": (dt.date, dt.date(2024, 1, 1)), "literal": (Literal["p", "q"], "p"),
    "enum": (Color, Color.red),
}


class Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.kinds: Counter = Counter()
        self.n_models = 0

    def type_(self, depth: int):
        """(annotation, a default value or ...)"""
        roll = self.rng.random()
        if depth < 3 and roll < 0.15:
            self.kinds["nested"] += 1
            return self.model(depth + 1), ...
        if depth < 3 and roll < 0.35:
            self.kinds["list"] += 1
            inner, _ = self.type_(depth + 1)
            return List[inner], []
        name = self.rng.choice(sorted(SCALARS))
        self.kinds[name] += 1
        return SCALARS[name]

    def model(self, depth: int = 0):
        self.n_models += 1
        fields = {}
        for name in self.rng.sample(NAMES, self.rng.randint(1, 6)):
            annotation, default = self.type_(depth)
            roll = self.rng.random()
            if roll < 0.25:
                self.kinds["optional"] += 1
                fields[name] = (Optional[annotation], None if self.rng.random() < 0.7 else ...)
            elif roll < 0.45 and default is not ...:
                self.kinds["default"] += 1
                fields[name] = (annotation, default)
            else:
                fields[name] = (annotation, ...)
        return create_model(f"M{self.n_models}", **fields)


def test_our_0_25_rule_matches_the_published_package_on_250_models(server):
    wire = Wire(server.uri)
    gen = Gen(seed=20260)
    compared = 0
    for i in range(250):
        model = gen.model()
        schema = model.model_json_schema()
        want = TableConfig.compute_fingerprint(schema)
        assert want == TableConfig(model, "fp", "s", f"t{i}").fingerprint_str
        try:
            reply = wire.register("fp", "s", f"t{i}", json.dumps(schema))
        except grpc.RpcError as err:
            pytest.fail(f"model {i} refused: {err.details()}\n{json.dumps(schema)}")
        assert reply[2] == [want.encode()], json.dumps(schema)
        compared += 1
    assert compared >= 200
    for kind in [*SCALARS, "nested", "list", "optional", "default"]:
        assert gen.kinds[kind] >= 10, (kind, gen.kinds)
    wire.close()


def test_models_the_published_package_cannot_fingerprint_are_refused(server):
    wire = Wire(server.uri)

    class Free(BaseModel):
        d: dict = {}

    class Union_(BaseModel):
        u: int | str

    for model in (Free, Union_):
        with pytest.raises(Exception):
            TableConfig.compute_fingerprint(model.model_json_schema())
        with pytest.raises(grpc.RpcError) as info:
            wire.register("fp", "bad", model.__name__, json.dumps(model.model_json_schema()))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    wire.close()
