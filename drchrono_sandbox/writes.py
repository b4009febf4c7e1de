"""Validation of write payloads (appointments, documents, reminder application).

Request bodies refer to other records by path (`"/api/doctors/101"`), as the reference
asks; errors come back as `{"field": ["message"]}` in Django REST framework's words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from drchrono_sandbox.filters import parse_date, parse_timestamp
from drchrono_sandbox.generate.base import Record, ref, ts
from drchrono_sandbox.generate.calendar import APPOINTMENT_STATUSES
from drchrono_sandbox.practice import Practice

_PATH = re.compile(r"^(?:https?://[^/]+)?/api/(?P<resource>[a-z_]+)/(?P<id>[^/]+)/?$")
_TEXT_FIELDS = ("color", "reason", "notes", "blood_pressure", "icd9_codes")
REQUIRED = "This field is required."
T = TypeVar("T")


class ValidationError(Exception):
    """Invalid write: answered 400 with `errors` as the body."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _blank(value: Any) -> bool:
    return value is None or value == ""


class _Fields:
    """Reads a payload's fields, collecting every error before raising them together."""

    def __init__(self, practice: Practice, payload: dict[str, Any]) -> None:
        self.practice = practice
        self.payload = payload
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def reference(self, name: str, resource: str, *, required: bool) -> Record | None:
        """The record a path field points at (None if blank and optional)."""
        value = self.payload.get(name)
        if _blank(value):
            if required:
                self.fail(name, REQUIRED)
            return None
        if not isinstance(value, str):
            self.fail(
                name, f"Incorrect type. Expected URL string, received {type(value).__name__}."
            )
            return None
        match = _PATH.match(value.strip())
        if match is None or match["resource"] != resource:
            self.fail(name, "Invalid hyperlink - No URL match.")
            return None
        record = self.practice.get(resource, match["id"])
        if record is None:
            self.fail(name, "Invalid hyperlink - Object does not exist.")
        return record

    def integer(self, name: str, *, minimum: int = 1) -> int | None:
        value = self.payload.get(name)
        if _blank(value):
            return None
        try:
            number = int(value)
            if isinstance(value, float) and value != number:
                raise ValueError(value)
        except (TypeError, ValueError):
            self.fail(name, "A valid integer is required.")
            return None
        if number < minimum:
            self.fail(name, f"Ensure this value is greater than or equal to {minimum}.")
            return None
        return number

    def parsed(self, name: str, parse: Callable[[str], T], message: str) -> T | None:
        """A required field read by `parse`; `message` when it cannot be."""
        value = self.payload.get(name)
        if _blank(value):
            self.fail(name, REQUIRED)
            return None
        try:
            return parse(str(value))
        except ValueError:
            self.fail(name, message)
            return None

    def timestamp(self, name: str) -> datetime | None:
        return self.parsed(
            name, parse_timestamp, "Datetime has wrong format. Use YYYY-MM-DDThh:mm[:ss]."
        )

    def day(self, name: str) -> date | None:
        return self.parsed(name, parse_date, "Date has wrong format. Use YYYY-MM-DD.")

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.payload.get(name)
        if _blank(value):
            if required:
                self.fail(name, REQUIRED)
            return None
        return str(value)

    def check(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def validate_appointment(practice: Practice, payload: dict[str, Any]) -> Record:
    """The fields of a new appointment, with profile defaults and template overrides.

    A valid `profile` supplies `color`, `reason` and `duration` unless given; a valid
    `template` (same office, same week day) imposes its `duration`, `exam_room` and
    `profile`. An unknown path is an error; a template that does not fit is ignored.
    """
    f = _Fields(practice, payload)
    doctor = f.reference("doctor", "doctors", required=True)
    office = f.reference("office", "offices", required=True)
    patient = f.reference("patient", "patients", required=False)
    profile = f.reference("profile", "appointment_profiles", required=False)
    template = f.reference("template", "appointment_templates", required=False)
    start = f.timestamp("scheduled_time")
    duration = f.integer("duration")
    exam_room = f.integer("exam_room")
    status = f.text("status") or ""
    if status not in APPOINTMENT_STATUSES:
        f.fail("status", f'"{status}" is not a valid choice.')
    f.check()
    assert doctor is not None and office is not None and start is not None
    if template is not None and (
        template["office"] != ref("offices", office["id"])
        or template["week_day"] != start.weekday()
    ):
        template = None
    if template is not None:
        duration = template["duration"]
        exam_room = template["exam_room"]
        profile = practice.get("appointment_profiles", template["profile"].rsplit("/", 1)[1])
    fields: Record = {
        "doctor": ref("doctors", doctor["id"]),
        "office": ref("offices", office["id"]),
        "patient": ref("patients", patient["id"]) if patient else None,
        "scheduled_time": ts(start),
        "status": status,
        "profile": ref("appointment_profiles", profile["id"]) if profile else None,
        "template": ref("appointment_templates", template["id"]) if template else None,
    }
    for name in _TEXT_FIELDS:
        fields[name] = f.text(name) or ""
    if profile is not None:
        fields["color"] = fields["color"] or profile["color"]
        fields["reason"] = fields["reason"] or profile["reason"]
        duration = duration or profile["duration"]
    if duration is None:
        f.fail("duration", REQUIRED)
    rooms = len(office["exam_rooms"])
    if exam_room is not None and exam_room > rooms:
        f.fail("exam_room", f"The office has {rooms} exam rooms.")
    f.check()
    fields["duration"] = duration
    fields["exam_room"] = exam_room or 1
    return fields


def validate_document(practice: Practice, form: dict[str, Any]) -> Record:
    """The fields of an uploaded document, less the file (checked by the caller)."""
    f = _Fields(practice, form)
    doctor = f.reference("doctor", "doctors", required=True)
    patient = f.reference("patient", "patients", required=True)
    description = f.text("description", required=True)
    day = f.day("date")
    metatags: list[str] = []
    raw_tags = form.get("metatags")
    if not _blank(raw_tags):
        try:
            metatags = json.loads(raw_tags) if isinstance(raw_tags, str) else raw_tags
            if not isinstance(metatags, list) or not all(isinstance(t, str) for t in metatags):
                raise ValueError(raw_tags)
        except ValueError:
            f.fail("metatags", "Enter a JSON list of strings.")
    f.check()
    assert doctor is not None and patient is not None
    return {
        "doctor": ref("doctors", doctor["id"]),
        "patient": ref("patients", patient["id"]),
        "description": description,
        "day": day,
        "metatags": metatags,
    }


def validate_appointment_reference(practice: Practice, payload: dict[str, Any]) -> str:
    """The id of the appointment `apply_to_appointment` names (400 if missing/invalid)."""
    f = _Fields(practice, payload)
    appointment = f.reference("appointment", "appointments", required=True)
    f.check()
    assert appointment is not None
    return str(appointment["id"])
