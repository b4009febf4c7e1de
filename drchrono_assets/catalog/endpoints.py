"""The ten drchrono resources, described once: path, partition rule, Arrow schema, primary key.

Schemas follow the v2014_08 reference field by field. Deviations, each for a reason:
- ``transactions.id`` and ``users.id`` are not in the reference tables but the service
  returns them (``/api/users/current`` redirects to ``/api/users/<id>``); they are the keys.
- The API field ``date`` of transactions and documents is stored as ``service_time`` /
  ``document_date``: ``date`` is the hive partition column, and DuckDB would silently
  replace a file's ``date`` with the partition value (pyarrow refuses to read it at all).
- Offices' ``start_time``/``end_time`` stay strings: ``end_time`` defaults to ``"24:00"``,
  which no Arrow time type holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from drchrono_assets.catalog.fields import (
    MONEY,
    QUANTITY,
    TIMESTAMP,
    column,
    list_of,
    reference,
    struct_list,
)
from drchrono_assets.catalog.partition_rules import (
    DatedSinceSweep,
    PartitionRule,
    ScheduledOn,
    Snapshot,
    SnapshotSince,
)

STRING, INT, BOOL, DATE = pa.string(), pa.int64(), pa.bool_(), pa.date32()
TIME = pa.time32("ms")  # Parquet has no seconds unit for times


@dataclass(frozen=True)
class ResourceSpec:
    """One drchrono list endpoint and how it becomes a daily-partitioned dataset."""

    name: str
    path: str
    description: str
    fields: tuple[pa.Field, ...]
    primary_key: tuple[str, ...]
    rule: PartitionRule

    @property
    def api_schema(self) -> pa.Schema:
        """Columns filled from the API's records."""
        return pa.schema(self.fields)

    @property
    def schema(self) -> pa.Schema:
        """Columns of every Parquet file of this resource."""
        return pa.schema([*self.fields, *self.rule.extra_fields])

    @property
    def money_fields(self) -> tuple[str, ...]:
        """Columns holding amounts of money (exact decimals)."""
        return tuple(field.name for field in self.fields if field.type == MONEY)

    def in_key_order(self, table: pa.Table) -> pa.Table:
        """Rows in primary-key order, as every partition file stores them."""
        return table.sort_by([(key, "ascending") for key in self.primary_key])


def _fields(*groups: pa.Field | list[pa.Field]) -> tuple[pa.Field, ...]:
    return tuple(f for group in groups for f in (group if isinstance(group, list) else [group]))


def _money(name: str, description: str) -> pa.Field:
    return column(name, MONEY, f"{description} (exact decimal)")


APPOINTMENTS = ResourceSpec(
    name="appointments",
    path="/api/appointments",
    description="Appointments and breaks on the practice's calendar, by scheduled day.",
    fields=_fields(
        column("id", STRING, "Unique id; usually numeric, not always (recurring instances)"),
        column("color", STRING, "CSS color"),
        reference("doctor", "doctor"),
        column("duration", INT, "Length in minutes"),
        column("exam_room", INT, "Index of the exam room"),
        reference("office", "office"),
        reference("patient", "patient", "Path of the patient; null for breaks"),
        reference("profile", "appointment profile"),
        column("reason", STRING, "Reason for the visit", phi=True),
        column(
            "reminders",
            struct_list(id=INT, scheduled_time=TIMESTAMP, type=STRING),
            "Reminders (email, sms, auto_call)",
        ),
        column("scheduled_time", TIMESTAMP, "Start, practice-local time"),
        column("status", STRING, "'', Arrived, Cancelled, Complete, Confirmed, In Session, ..."),
        reference("template", "appointment template"),
        column("blood_pressure", STRING, phi=True),
        column("icd9_codes", STRING, phi=True),
        column("notes", STRING, phi=True),
    ),
    primary_key=("id",),
    rule=ScheduledOn(day_column="scheduled_time"),
)

APPOINTMENT_PROFILES = ResourceSpec(
    name="appointment_profiles",
    path="/api/appointment_profiles",
    description="Appointment profiles (default color, reason and duration for new appointments).",
    fields=_fields(
        column("color", STRING),
        column("duration", INT, "Length in minutes"),
        column("id", INT),
        column("name", STRING),
        column("online_scheduling", BOOL),
        column("reason", STRING),
        column("sort_order", INT),
    ),
    primary_key=("id",),
    rule=Snapshot(),
)

APPOINTMENT_TEMPLATES = ResourceSpec(
    name="appointment_templates",
    path="/api/appointment_templates",
    description="Weekly appointment templates per office.",
    fields=_fields(
        column("duration", INT, "Length in minutes"),
        column("exam_room", INT, "1-based exam room index"),
        column("id", INT),
        reference("office", "office"),
        reference("profile", "appointment profile"),
        column("scheduled_time", TIME, "Time of day"),
        column("week_day", INT, "0 = Monday ... 6 = Sunday"),
    ),
    primary_key=("id",),
    rule=Snapshot(),
)

DOCTORS = ResourceSpec(
    name="doctors",
    path="/api/doctors",
    description="Doctors of the practice.",
    fields=_fields(
        column("cell_phone", STRING),
        column("country", STRING),
        column("email", STRING),
        column("first_name", STRING),
        column("group_npi_number", STRING),
        column("home_phone", STRING),
        column("id", INT),
        column("job_title", STRING),
        column("last_name", STRING),
        column("npi_number", STRING),
        column("office_phone", STRING),
        column("specialty", STRING),
        column("suffix", STRING),
        column("website", STRING),
    ),
    primary_key=("id",),
    rule=Snapshot(),
)

DOCUMENTS = ResourceSpec(
    name="documents",
    path="/api/documents",
    description="Documents in patients' charts, by the document's date.",
    fields=_fields(
        column("document_date", DATE, "The document's date (API field `date`)", api_name="date"),
        column("description", STRING, phi=True),
        reference("doctor", "doctor"),
        column("document", STRING, "URL of the file"),
        column("id", INT),
        column("metatags", list_of(STRING)),
        reference("patient", "patient"),
    ),
    primary_key=("id",),
    rule=DatedSinceSweep(day_column="document_date"),
)

OFFICES = ResourceSpec(
    name="offices",
    path="/api/offices",
    description="Offices with their exam rooms and online scheduling slots.",
    fields=_fields(
        column("address", STRING),
        column("city", STRING),
        column("country", STRING),
        column("end_time", STRING, "Closing hour, e.g. '24:00' (kept as text)"),
        column(
            "exam_rooms",
            struct_list(index=INT, name=STRING, online_scheduling=BOOL),
            "Exam rooms, 1-based index",
        ),
        column("id", INT),
        column("name", STRING),
        column("online_scheduling", BOOL),
        column(
            "online_timeslots",
            struct_list(day=INT, hour=INT, minute=INT),
            "Online slots; day 0 = Sunday",
        ),
        column("phone_number", STRING),
        column("start_time", STRING, "Opening hour, e.g. '08:00' (kept as text)"),
        column("state", STRING),
        column("zip_code", STRING),
    ),
    primary_key=("id",),
    rule=Snapshot(),
)

PATIENTS = ResourceSpec(
    name="patients",
    path="/api/patients",
    description="Patient demographics and primary insurance. Contains PHI: restrict access.",
    fields=_fields(
        column("id", INT),
        column("date_of_birth", DATE, phi=True),
        reference("doctor", "primary provider doctor"),
        column("address", STRING, phi=True),
        column("cell_phone", STRING, phi=True),
        column("chart_id", STRING),
        column("city", STRING, phi=True),
        column("email", STRING, phi=True),
        column("emergency_contact_name", STRING, phi=True),
        column("emergency_contact_phone", STRING, phi=True),
        column("emergency_contact_relation", STRING, phi=True),
        column("employer", STRING, phi=True),
        column("employer_address", STRING, phi=True),
        column("employer_city", STRING, phi=True),
        column("employer_state", STRING, phi=True),
        column("employer_zip_code", STRING, phi=True),
        column("ethnicity", STRING),
        column("first_name", STRING, phi=True),
        column("gender", STRING),
        column("home_phone", STRING, phi=True),
        column("last_name", STRING, phi=True),
        column("middle_name", STRING, phi=True),
        column("preferred_language", STRING),
        column("primary_care_physician", STRING),
        column("race", STRING),
        column("social_security_number", STRING, phi=True),
        column("state", STRING, phi=True),
        column("zip_code", STRING, phi=True),
        column("primary_insurance_company", STRING),
        column("primary_insurance_id_number", STRING, phi=True),
        column("primary_insurance_group_number", STRING, phi=True),
        column("primary_insurance_claim_office_number", STRING),
        column("primary_insurance_payer_id", STRING),
        column("primary_insurance_plan_name", STRING),
        column("primary_insurance_plan_type", STRING),
    ),
    primary_key=("id",),
    rule=SnapshotSince(),
)

REMINDER_PROFILES = ResourceSpec(
    name="reminder_profiles",
    path="/api/reminder_profiles",
    description="Reminder profiles that can be applied to appointments.",
    fields=_fields(
        column("id", INT),
        reference("doctor", "doctor"),
        column("name", STRING),
        column("reminders", struct_list(amount=INT, type=STRING, unit=STRING)),
    ),
    primary_key=("id",),
    rule=Snapshot(),
)

USERS = ResourceSpec(
    name="users",
    path="/api/users",
    description="User accounts (doctors and staff) of the practice.",
    fields=_fields(
        column("id", INT, "User id (returned by the service, not in the 2014 table)"),
        reference("doctor", "doctor", "Own record for doctors, primary physician for staff"),
        column("is_doctor", BOOL),
        column("is_staff", BOOL),
        column("username", STRING),
    ),
    primary_key=("id",),
    rule=Snapshot(),
)

TRANSACTIONS = ResourceSpec(
    name="transactions",
    path="/api/transactions",
    description="Billing line items (charges, payments, balances) by date of service.",
    fields=_fields(
        column("id", INT, "Line item id (returned by the service, not in the 2014 table)"),
        column("appointment", INT, "Appointment id (an integer here, a string on appointments)"),
        column("doctor", INT, "Doctor id"),
        column("doctor_name", STRING),
        column("billing_status", STRING),
        column("denied_flag", BOOL),
        column("code", STRING, "Procedure code"),
        column("description", STRING),
        column("procedure_type", STRING, "CPT, HCPCS or Custom"),
        column("quantity", QUANTITY),
        column("units", STRING),
        column("edi_note", STRING),
        column("modifiers", list_of(STRING), "Up to 4 code modifiers"),
        column("diagnosis_pointers", list_of(INT), "Up to 4 diagnosis pointers"),
        _money("price", "Price of the procedure"),
        _money("billed", "Total billed"),
        _money("allowed", "Amount allowed by insurance"),
        _money("adjustment", "Adjustment from total billed"),
        _money("ins1_paid", "Paid by the primary insurer"),
        _money("ins2_paid", "Paid by the secondary insurer"),
        _money("ins3_paid", "Paid by the tertiary insurer"),
        _money("ins_total", "Paid by insurers"),
        _money("pt_paid", "Paid by the patient"),
        _money("paid_total", "Total paid"),
        _money("balance_ins", "Insurance balance"),
        _money("balance_pt", "Patient balance"),
        _money("balance_total", "Total balance"),
        column("service_time", TIMESTAMP, "Start of the visit (API field `date`)", api_name="date"),
        column("location", INT, "Office id"),
    ),
    primary_key=("id",),
    # The endpoint requires `doctor`, so the sweep runs once per doctor.
    rule=DatedSinceSweep(day_column="service_time", fan_out=("doctor", "/api/doctors")),
)

RESOURCES: tuple[ResourceSpec, ...] = (
    APPOINTMENTS,
    APPOINTMENT_PROFILES,
    APPOINTMENT_TEMPLATES,
    DOCTORS,
    DOCUMENTS,
    OFFICES,
    PATIENTS,
    REMINDER_PROFILES,
    USERS,
    TRANSACTIONS,
)

#: The resources the billing report joins: every practice ingests them.
BILLING_INPUTS = ("appointments", "doctors", "transactions")


def resources_named(names: Sequence[str] | None) -> tuple[ResourceSpec, ...]:
    """The catalog's resources called ``names``, in catalog order (None: all of them);
    ``ValueError`` names an unknown or a missing one, and what to give instead."""
    if names is None:
        return RESOURCES
    known = [spec.name for spec in RESOURCES]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"no resource {', '.join(unknown)}: choose from {', '.join(known)}")
    missing = [name for name in BILLING_INPUTS if name not in names]
    if missing:
        raise ValueError(
            f"{', '.join(missing)} missing: the billing report joins "
            f"{', '.join(BILLING_INPUTS)}, so every practice ingests them"
        )
    return tuple(spec for spec in RESOURCES if spec.name in names)
