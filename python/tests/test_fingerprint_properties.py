"""Property tests for the fingerprint over generated models: field order never
changes it; adding, removing or retyping a field, or changing its nullability,
always does."""
from __future__ import annotations

import datetime as dt
from typing import List, Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, create_model

from bifrost import TableConfig

SCALARS = [str, int, float, bool, dt.datetime, dt.date]


class Inner(BaseModel):
    a: int
    b: Optional[str] = None


def type_strategy():
    scalar = st.sampled_from(SCALARS)
    return st.one_of(scalar, scalar.map(lambda t: List[t]), st.just(Inner), st.just(List[Inner]))


names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(lambda n: not n.startswith("scouter_"))
fields = st.dictionaries(names, st.tuples(type_strategy(), st.booleans()), min_size=1, max_size=8)


def model(spec: dict, order=None):
    keys = order if order is not None else list(spec)
    definitions = {}
    for name in keys:
        tp, optional = spec[name]
        definitions[name] = (Optional[tp], None) if optional else (tp, ...)
    return create_model("Generated", **definitions)


def fp(spec, order=None):
    return TableConfig.compute_fingerprint(model(spec, order).model_json_schema())


@settings(max_examples=60, deadline=None)
@given(fields, st.randoms())
def test_order_never_changes_the_fingerprint(spec, rnd):
    order = list(spec)
    rnd.shuffle(order)
    assert fp(spec) == fp(spec, order)


@settings(max_examples=60, deadline=None)
@given(fields, names, type_strategy())
def test_adding_a_field_changes_it(spec, name, tp):
    if name in spec:
        return
    bigger = dict(spec)
    bigger[name] = (tp, False)
    assert fp(spec) != fp(bigger)


@settings(max_examples=60, deadline=None)
@given(fields)
def test_removing_a_field_changes_it(spec):
    if len(spec) < 2:
        return
    smaller = dict(spec)
    smaller.pop(next(iter(smaller)))
    assert fp(spec) != fp(smaller)


@settings(max_examples=60, deadline=None)
@given(fields, st.data())
def test_retyping_or_nullability_changes_it(spec, data):
    name = data.draw(st.sampled_from(sorted(spec)))
    tp, optional = spec[name]
    flipped = dict(spec)
    flipped[name] = (tp, not optional)
    assert fp(spec) != fp(flipped)
    other = data.draw(type_strategy().filter(lambda t: repr(t) != repr(tp)))
    retyped = dict(spec)
    retyped[name] = (other, optional)
    assert fp(spec) != fp(retyped)
