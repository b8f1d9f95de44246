"""Field differences between a model and a table, for FingerprintMismatchError.

Both sides are ``parse_schema`` dictionaries (``{name: {"arrow_type", "nullable"}}``,
system columns included): the local one from TableConfig.fields, the server's from
DescribeTable's ``arrow_schema`` (or its ``json_schema``)."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping

from . import _core

__all__ = ["explain_mismatch", "schema_differences", "format_differences", "server_fields"]

Fields = Mapping[str, Mapping[str, Any]]


def server_fields(info: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """The table's columns from a describe_dataset() answer."""
    arrow = info.get("arrow_schema")
    if isinstance(arrow, dict) and arrow and all(isinstance(v, dict) for v in arrow.values()):
        return {k: dict(v) for k, v in arrow.items()}
    text = info.get("json_schema") or "{}"
    fields: Dict[str, Dict[str, Any]] = json.loads(
        _core.parse_schema(text if isinstance(text, str) else json.dumps(text)))
    return fields


def _kind(field: Mapping[str, Any]) -> str:
    return f"{field.get('arrow_type')}, {'nullable' if field.get('nullable') else 'required'}"


def schema_differences(model: Fields, table: Fields) -> Dict[str, List[str]]:
    """``added`` (in the model, not the table), ``removed`` (in the table, not the
    model), ``type_changed`` and ``nullability_changed``: human-readable entries."""
    added = [f"{n} ({_kind(model[n])})" for n in model if n not in table]
    removed = [f"{n} ({_kind(table[n])})" for n in table if n not in model]
    type_changed = [f"{n}: table {table[n].get('arrow_type')} -> model {model[n].get('arrow_type')}"
                    for n in model if n in table and model[n].get("arrow_type") != table[n].get("arrow_type")]
    nullability_changed = [
        f"{n}: table {'nullable' if table[n].get('nullable') else 'required'} -> model "
        f"{'nullable' if model[n].get('nullable') else 'required'}"
        for n in model if n in table and bool(model[n].get("nullable")) != bool(table[n].get("nullable"))]
    return {"added": added, "removed": removed, "type_changed": type_changed,
            "nullability_changed": nullability_changed}


def format_differences(diff: Mapping[str, List[str]]) -> str:
    """One line per kind of difference, or a note that no column differs."""
    labels = {"added": "in the model, not in the table", "removed": "in the table, not in the model",
              "type_changed": "type changed", "nullability_changed": "nullability changed"}
    lines = [f"  {labels[k]}: {'; '.join(v)}" for k, v in diff.items() if v]
    if not lines:
        return "  no column differs in name, type or nullability (nested field or metadata differences)"
    return "\n".join(lines)


def explain_mismatch(error: Any, config: Any, transport: Any) -> None:
    """Adds the column differences to a FingerprintMismatchError raised by a
    registration (the server's message names only the two fingerprints): describes
    the table, sets ``error.differences`` and extends its message. Never raises; the
    error stays as it was when the table cannot be described."""
    try:
        channel = _core.Channel(transport.server_uri, tls=transport.tls, authorization=transport.authorization,
                                **transport.tls_files())
        info = json.loads(channel.describe_table(config.catalog, config.schema_name, config.table,
                                                 transport.timeout_secs))
        diff = schema_differences(config.fields, server_fields(info))
    except Exception:  # noqa: BLE001 - the original error is the one to report
        return
    message = (f"{error.message}\ntable {config.fqn} on the server does not match the model "
               f"{config.model.__name__}:\n{format_differences(diff)}")
    error.message = message
    error.args = (message,)
    error.differences = diff
