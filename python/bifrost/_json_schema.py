"""The JSON Schema bifrost registers for a model: pydantic's own, plus the two
constraints of a ``decimal.Decimal`` that pydantic leaves out (``max_digits`` and
``decimal_places``), which fix the column's ``decimal(p, s)`` type. Every other
type's schema is exactly pydantic's, so fingerprints of existing tables do not
change."""
from typing import Any, Dict

from pydantic.json_schema import GenerateJsonSchema


class BifrostJsonSchema(GenerateJsonSchema):
    def decimal_schema(self, schema: Any) -> Dict[str, Any]:
        json_schema = super().decimal_schema(schema)
        for key in ("max_digits", "decimal_places"):
            value = schema.get(key)
            if value is not None:
                json_schema[key] = value
        return json_schema


def model_json_schema(model: Any) -> Dict[str, Any]:
    """``model.model_json_schema()`` with the Decimal constraints bifrost needs."""
    schema: Dict[str, Any] = model.model_json_schema(schema_generator=BifrostJsonSchema)
    return schema
