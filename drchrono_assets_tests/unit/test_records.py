"""Unit tests: API records -> Arrow, schema drift, and no values in errors."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from drchrono_assets.catalog.endpoints import APPOINTMENTS, OFFICES, PATIENTS, TRANSACTIONS
from drchrono_assets.catalog.records import records_to_table, unknown_fields
from drchrono_assets.errors import SchemaChangedError

APPOINTMENT = {
    "id": "8812_20240305",
    "color": "#ABCDEF",
    "doctor": "/api/doctors/101",
    "duration": 30,
    "exam_room": 1,
    "office": "/api/offices/7",
    "patient": None,
    "profile": None,
    "reason": "",
    "reminders": [{"id": 5, "scheduled_time": "2024-03-04T09:00:00", "type": "sms"}],
    "scheduled_time": "2024-03-05T09:30:00",
    "status": "Complete",
    "template": "/api/appointment_templates/3",
    "blood_pressure": "",
    "icd9_codes": "",
    "notes": "",
}


def test_every_type_converts_and_reference_ids_are_parsed() -> None:
    table = records_to_table([APPOINTMENT], APPOINTMENTS.api_schema, "appointments")
    row = table.to_pylist()[0]
    assert table.schema == APPOINTMENTS.api_schema
    assert row["id"] == "8812_20240305"
    assert (row["doctor"], row["doctor_id"]) == ("/api/doctors/101", 101)
    assert (row["patient"], row["patient_id"]) == (None, None)
    assert row["template_id"] == 3
    assert row["scheduled_time"] == dt.datetime(2024, 3, 5, 9, 30)
    assert row["reminders"] == [
        {"id": 5, "scheduled_time": dt.datetime(2024, 3, 4, 9), "type": "sms"}
    ]


def test_money_stays_exact_decimal() -> None:
    record = {"id": 1, "price": "125.10", "billed": "0.30", "quantity": Decimal("0.5")}
    table = records_to_table([record], TRANSACTIONS.api_schema, "transactions")
    assert pa.types.is_decimal(table.schema.field("price").type)
    assert table["price"][0].as_py() == Decimal("125.10")
    assert table["billed"][0].as_py() + table["price"][0].as_py() == Decimal("125.40")
    assert table["quantity"][0].as_py() == Decimal("0.5")


def test_api_field_date_is_stored_under_its_own_column_name() -> None:
    record = {"id": 1, "date": "2024-03-05T10:00:00"}
    table = records_to_table([record], TRANSACTIONS.api_schema, "transactions")
    assert "date" not in table.column_names
    assert table["service_time"][0].as_py() == dt.datetime(2024, 3, 5, 10)


def test_nested_lists_of_objects() -> None:
    office = {
        "id": 7,
        "end_time": "24:00",
        "exam_rooms": [{"index": 1, "name": "Room 1", "online_scheduling": False}],
        "online_timeslots": [{"day": 1, "hour": 9, "minute": 15}],
    }
    row = records_to_table([office], OFFICES.api_schema, "offices").to_pylist()[0]
    assert row["end_time"] == "24:00"
    assert row["exam_rooms"][0]["name"] == "Room 1"
    assert row["online_timeslots"][0]["minute"] == 15


def test_new_api_fields_are_ignored_and_reported() -> None:
    record = {**APPOINTMENT, "is_virtual": True}
    table = records_to_table([record], APPOINTMENTS.api_schema, "appointments")
    assert "is_virtual" not in table.column_names
    assert unknown_fields([record], APPOINTMENTS.api_schema) == {"is_virtual"}


PHI = "Jane Q Public 000-12-3456"


@pytest.mark.parametrize(
    ("resource", "record", "column"),
    [
        (PATIENTS, {"id": 1, "date_of_birth": PHI}, "date_of_birth"),
        (PATIENTS, {"id": PHI}, "id"),
        (PATIENTS, {"id": 1, "first_name": ["Jane"]}, "first_name"),
        (TRANSACTIONS, {"id": 1, "price": PHI}, "price"),
        (TRANSACTIONS, {"id": 1, "price": "12.345"}, "price"),
        (APPOINTMENTS, {**APPOINTMENT, "doctor": f"/api/doctors/{PHI}"}, "doctor_id"),
        (APPOINTMENTS, {**APPOINTMENT, "reminders": [{"id": PHI}]}, "reminders"),
    ],
)
def test_changed_schema_names_the_column_never_the_value(resource, record, column) -> None:
    with pytest.raises(SchemaChangedError) as raised:
        records_to_table([record], resource.api_schema, resource.name)
    message = str(raised.value)
    assert repr(column) in message and resource.name in message
    assert "Jane" not in message and "000-12" not in message and "12.345" not in message
    # Nothing chained either: Dagster prints causes and contexts.
    assert raised.value.__cause__ is None and raised.value.__context__ is None
