"""Turn API records (parsed JSON) into Arrow tables of a resource's declared schema.

Fields the API added since the reference are ignored (its stated policy is to add fields);
a documented field whose value no longer fits its type raises ``SchemaChangedError``
naming the resource, column and types, never the value, which may be patient data.
List responses always carry every key (``""`` or ``null`` for no value), so a declared
field missing from them (``missing_fields``) is a changed schema too.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from drchrono_assets.catalog.fields import api_name, derived_from
from drchrono_assets.errors import SchemaChangedError

JsonRecord = Mapping[str, Any]


class _Mismatch(Exception):
    """Internal: a value does not fit a type; carries type names only."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(expected, got)
        self.expected = expected
        self.got = got


def _parse_iso(parse: Callable[[str], Any], expected: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if not isinstance(value, str):
            raise _Mismatch(expected, type(value).__name__)
        try:
            return parse(value)
        except ValueError:
            raise _Mismatch(expected, "a string in another format") from None

    return convert


_to_timestamp = _parse_iso(dt.datetime.fromisoformat, "an ISO 8601 timestamp")
_to_date = _parse_iso(dt.date.fromisoformat, "an ISO 8601 date")
_to_time = _parse_iso(dt.time.fromisoformat, "an ISO 8601 time")


def _to_decimal(value: Any) -> decimal.Decimal:
    # JSON numbers arrive as Decimal (the client parses floats as Decimal), money as strings.
    if isinstance(value, bool) or not isinstance(value, str | int | decimal.Decimal):
        raise _Mismatch("a decimal string or number", type(value).__name__)
    try:
        number = decimal.Decimal(value)
    except decimal.InvalidOperation:
        raise _Mismatch("a decimal string or number", "a non-numeric string") from None
    if not number.is_finite():
        raise _Mismatch("a finite decimal", "a non-finite number")
    return number


def _coerce(value: Any, type_: pa.DataType) -> Any:
    """The Python value pyarrow needs for ``type_``, checking the JSON type strictly."""
    if value is None:
        return None
    if pa.types.is_string(type_):
        if not isinstance(value, str):
            raise _Mismatch("a string", type(value).__name__)
        return value
    if pa.types.is_boolean(type_):
        if not isinstance(value, bool):
            raise _Mismatch("a boolean", type(value).__name__)
        return value
    if pa.types.is_integer(type_):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Mismatch("an integer", type(value).__name__)
        return value
    if pa.types.is_decimal(type_):
        number = _to_decimal(value)
        if number != number.quantize(decimal.Decimal(1).scaleb(-type_.scale)):
            raise _Mismatch(f"at most {type_.scale} decimal places", "more")
        return number
    if pa.types.is_timestamp(type_):
        return _to_timestamp(value)
    if pa.types.is_date(type_):
        return _to_date(value)
    if pa.types.is_time(type_):
        return _to_time(value)
    if pa.types.is_list(type_):
        if not isinstance(value, list):
            raise _Mismatch("a list", type(value).__name__)
        return [_coerce(item, type_.value_type) for item in value]
    if pa.types.is_struct(type_):
        if not isinstance(value, Mapping):
            raise _Mismatch("an object", type(value).__name__)
        return {child.name: _coerce(value.get(child.name), child.type) for child in type_}
    raise TypeError(f"no JSON conversion for Arrow type {type_}")


def reference_id(path: str | None) -> int | None:
    """``"/api/doctors/12"`` -> ``12``; ``None`` stays ``None``."""
    if path is None:
        return None
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if not last.isdigit():
        raise _Mismatch("a path ending in a numeric id", "another path")
    return int(last)


def _arrow_conversion(values: list[Any], type_: pa.DataType) -> pa.Array | None:
    """``values`` as an array of ``type_`` by Arrow's own parsing, where that accepts no value
    the JSON types would not (the Python types present are checked first); ``None`` where it
    does not apply or fails, for the value-by-value conversion to decide and name the problem.
    """
    kinds = set(map(type, values)) - {type(None)}
    try:
        if kinds <= {list} and pa.types.is_list(type_):
            return _list_conversion(values, type_)
        if kinds <= {dict} and pa.types.is_struct(type_):
            return _struct_conversion(values, type_)
        if kinds <= {str} and (
            pa.types.is_string(type_)
            or pa.types.is_timestamp(type_)
            or pa.types.is_date(type_)
            or pa.types.is_decimal(type_)
        ):
            # Arrow parses ISO 8601 and decimal strings in a subset of what Python accepts,
            # to the same values, and refuses extra decimal places. (Strings convert to
            # large_string several times faster than to string, hence the detour.)
            return pa.array(values, pa.large_string()).cast(type_)
        if (kinds <= {int} and pa.types.is_integer(type_)) or (
            kinds <= {bool} and pa.types.is_boolean(type_)
        ):
            return pa.array(values, type_)
        if kinds <= {int, decimal.Decimal} and pa.types.is_decimal(type_):
            return pa.array(values, type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None
    return None


def _list_conversion(values: list[list[Any] | None], type_: pa.ListType) -> pa.Array | None:
    items = [item for value in values if value is not None for item in value]
    flat = _arrow_conversion(items, type_.value_type)
    if flat is None:
        return None
    lengths = (0 if value is None else len(value) for value in values)
    offsets = pa.array(itertools.accumulate(lengths, initial=0), pa.int32())
    missing = pa.array([value is None for value in values], pa.bool_())
    return pa.ListArray.from_arrays(offsets, flat, type=type_, mask=missing)


def _struct_conversion(
    values: list[dict[str, Any] | None], type_: pa.StructType
) -> pa.Array | None:
    children = []
    for child in type_:
        array = _arrow_conversion(
            [None if value is None else value.get(child.name) for value in values], child.type
        )
        if array is None:
            return None
        children.append(array)
    missing = pa.array([value is None for value in values], pa.bool_())
    return pa.StructArray.from_arrays(children, fields=list(type_), mask=missing)


def records_to_table(records: Sequence[JsonRecord], schema: pa.Schema, resource: str) -> pa.Table:
    """An Arrow table with exactly ``schema``'s columns, one row per record."""
    columns = []
    for field in schema:
        source = derived_from(field)
        try:
            if source:
                path_name = api_name(schema.field(source))
                values = [reference_id(_coerce(r.get(path_name), pa.string())) for r in records]
                columns.append(pa.array(values, type=field.type))
            else:
                name = api_name(field)
                values = [record.get(name) for record in records]
                array = _arrow_conversion(values, field.type)
                if array is None:
                    array = pa.array([_coerce(value, field.type) for value in values], field.type)
                columns.append(array)
        except _Mismatch as mismatch:
            problem = f"expected {mismatch.expected}, got {mismatch.got}"
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            problem = f"values do not fit {field.type}"
        else:
            continue
        # Raised outside the except blocks so no chained exception can carry a value.
        raise SchemaChangedError(
            f"drchrono {resource}: column {field.name!r} (API field {api_name(field)!r}): "
            f"{problem}. The API's response format changed; update the catalog schema."
        )
    return pa.Table.from_arrays(columns, schema=schema)


def unknown_fields(records: Sequence[JsonRecord], schema: pa.Schema) -> set[str]:
    """API field names present in ``records`` that the schema does not declare."""
    known = {api_name(field) for field in schema}
    return {name for record in records for name in record} - known


def missing_fields(records: Sequence[JsonRecord], schema: pa.Schema) -> set[str]:
    """API field names the schema declares that some of ``records`` do not carry."""
    declared = {api_name(field) for field in schema if not derived_from(field)}
    return {name for record in records for name in declared - record.keys()}
