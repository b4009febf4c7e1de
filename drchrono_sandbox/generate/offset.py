"""The practices of one sandbox: practice 0 is the generator's practice as it always was;
practice `i` draws from its own seed and has every id moved up by `i * ID_STEP`, so no
two practices share an id.

Ids are moved everywhere they stand: each record's `id` (an appointment's string id
too, `"100005"` or a recurring instance's `"8123_20240105"`, whose series number
moves), the paths by which records refer to others (`/api/patients/10001`), the
integer references of line items (`appointment`, `doctor`, `location`), reminders' ids,
document file paths (which carry the document's id), the hidden maps keyed by id, and
the next ids new records will take.
"""

from __future__ import annotations

import re
from typing import Any

from drchrono_sandbox.generate.base import PracticeData, Record, ref

#: How far apart the practices' seeds are: practice `i` draws from `seed + i * SEED_STEP`.
SEED_STEP = 1000
#: How far apart the practices' ids are: practice `i`'s are moved up by `i * ID_STEP`.
ID_STEP = 10_000_000
#: Integer fields that hold another record's id, by resource (the others refer by path).
INTEGER_REFERENCES: dict[str, tuple[str, ...]] = {
    "transactions": ("appointment", "doctor", "location"),
}

_REFERENCE = re.compile(r"^/api/(?P<resource>[a-z_]+)/(?P<id>[^/]+)$")


def practice_seed(seed: int, index: int) -> int:
    """The seed practice `index` is generated from (practice 0: `seed` itself)."""
    return seed + index * SEED_STEP


def id_offset(index: int) -> int:
    """What practice `index`'s ids are moved up by (practice 0: nothing)."""
    return index * ID_STEP


def shift_id(record_id: int | str, offset: int) -> int | str:
    """A record id moved up by `offset`: an integer, a numeric string, or a recurring
    appointment's `<series>_<YYYYMMDD>`, whose series number moves."""
    if isinstance(record_id, int):
        return record_id + offset
    number, separator, rest = record_id.partition("_")
    return f"{int(number) + offset}{separator}{rest}"


def _shift_record(record: Record, offset: int, integer_fields: tuple[str, ...]) -> None:
    """Move the ids of one record in place: its own, its references, its reminders'."""
    for key, value in record.items():
        if key == "id":
            record[key] = shift_id(value, offset)
        elif key in integer_fields and isinstance(value, int):
            record[key] = value + offset
        elif isinstance(value, str) and (match := _REFERENCE.match(value)):
            record[key] = ref(match["resource"], shift_id(match["id"], offset))
    for reminder in record.get("reminders", ()):
        if "id" in reminder:  # appointments' reminders (reminder profiles' rules have none)
            reminder["id"] += offset


def _shift_keys(mapping: dict[Any, Any], offset: int) -> dict[Any, Any]:
    return {shift_id(key, offset): value for key, value in mapping.items()}


def offset_ids(data: PracticeData, offset: int) -> None:
    """Move every id of a generated practice up by `offset`, in place (see the module)."""
    if not offset:
        return
    for name, records in vars(data).items():
        if isinstance(records, list):  # the resources' records
            for record in records:
                _shift_record(record, offset, INTEGER_REFERENCES.get(name, ()))
    data.updated_at = {
        name: _shift_keys(stamps, offset) for name, stamps in data.updated_at.items()
    }
    data.document_paths = {
        document_id + offset: path.replace(f"/{document_id}/", f"/{document_id + offset}/", 1)
        for document_id, path in data.document_paths.items()
    }
    for document in data.documents:
        document["document"] = data.document_paths[document["id"]]
    data.self_pay_transactions = {line_id + offset for line_id in data.self_pay_transactions}
    data.account_user_id += offset
    data.next_appointment_id += offset
    data.next_document_id += offset
    data.next_reminder_id += offset
