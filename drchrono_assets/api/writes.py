"""drchrono's documented write calls. A write is never sent again once it may have been
applied (``transport.Call.idempotent``): a lost answer is reported, not retried."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from drchrono_assets.api.connection import BaseClient
from drchrono_assets.errors import ApiRequestError

if TYPE_CHECKING:
    # Only annotations use it: importing the catalog at run time would import Dagster.
    from drchrono_assets.catalog.records import JsonRecord


class ReminderConflictError(ApiRequestError):
    """The appointment already has reminders (HTTP 409 from ``apply_to_appointment``)."""


class WriteCalls(BaseClient):
    """The write calls of ``DrchronoClient``, each one ``POST`` sent by ``BaseClient``."""

    def create_appointment(
        self,
        *,
        doctor: int,
        office: int,
        patient: int | None,
        scheduled_time: dt.datetime,
        duration: int | None = None,
        exam_room: int | None = None,
        profile: int | None = None,
        **fields: Any,
    ) -> JsonRecord:
        """Create an appointment (``POST /api/appointments``) and return it."""
        data = {
            "doctor": f"/api/doctors/{doctor}",
            "office": f"/api/offices/{office}",
            "patient": f"/api/patients/{patient}" if patient is not None else None,
            "scheduled_time": scheduled_time.isoformat(timespec="seconds"),
            "duration": duration,
            "exam_room": exam_room,
            "profile": f"/api/appointment_profiles/{profile}" if profile is not None else None,
            **fields,
        }
        data = {key: value for key, value in data.items() if value is not None}
        return self._request("POST", "/api/appointments", data=data)

    def upload_document(
        self,
        *,
        doctor: int,
        patient: int,
        description: str,
        date: dt.date,
        document: IO[bytes] | Path,
        filename: str | None = None,
        metatags: list[str] | None = None,
    ) -> JsonRecord:
        """Upload a file into a patient's chart (multipart ``POST /api/documents``)."""
        data = {
            "doctor": f"/api/doctors/{doctor}",
            "patient": f"/api/patients/{patient}",
            "description": description,
            "date": date.isoformat(),
            "metatags": json.dumps(metatags or []),
        }
        if isinstance(document, Path):
            with document.open("rb") as handle:
                files = {"document": (filename or document.name, handle.read())}
        else:
            files = {"document": (filename or "document", document.read())}
        return self._request("POST", "/api/documents", data=data, files=files)

    def apply_reminder_profile(self, profile_id: int, appointment_id: str) -> None:
        """Add a reminder profile's reminders to an appointment that has none (HTTP 204).

        Raises ``ReminderConflictError`` when the appointment already has reminders (409) and
        ``ApiRequestError`` when the appointment is missing or invalid (400).
        """
        self._request(
            "POST",
            f"/api/reminder_profiles/{profile_id}/apply_to_appointment",
            data={"appointment": f"/api/appointments/{appointment_id}"},
            errors={409: ReminderConflictError},
        )
