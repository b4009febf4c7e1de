"""Query-parameter filters of the list endpoints, exactly those of the reference.

Parameters take ids (`doctor=101`) while records carry paths (`/api/doctors/101`),
except transactions, whose `doctor` is an integer. Filters see the records as served
now (in evolving mode, each one's served version); `since`, practice-local, keeps those
whose hidden "updated at" (the served version's update time) is at or after it.
Malformed values answer 400 with `{"<param>": ["message"]}`; unknown parameters are
ignored, as by the real API.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, TypeVar

from starlette.datastructures import QueryParams

from drchrono_sandbox.generate.base import Record, ref

if TYPE_CHECKING:  # both import this module (the practice by way of the resource table)
    from drchrono_sandbox.practice import Practice
    from drchrono_sandbox.resource_table import SandboxResource

#: Widest `date_range` accepted for appointments, in days between its two dates.
MAX_DATE_RANGE_DAYS = 190
GENDERS = ("Male", "Female", "Other")
#: Parameters that pick a page of a selection, not the selection.
PAGING_PARAMS = ("cursor", "page_size")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
T = TypeVar("T")


#: A list's filters: the records of a practice that a query's parameters keep.
Selector = Callable[["Practice", "Params"], Iterable[Record]]


class QueryError(Exception):
    """Invalid query parameters: answered 400 with `errors` as the body."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def parse_date(text: str) -> date:
    """A `YYYY-MM-DD` date; `ValueError` otherwise."""
    if not _DATE.match(text):
        raise ValueError(text)
    return date.fromisoformat(text)


def parse_timestamp(text: str) -> datetime:
    """A timestamp (or a bare date, meaning its midnight) as naive local time.

    A time zone, if given, is dropped: the practice's timestamps are all local.
    """
    if _DATE.match(text):
        return datetime.combine(date.fromisoformat(text), datetime.min.time())
    if not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text):
        raise ValueError(text)
    return datetime.fromisoformat(text).replace(tzinfo=None)


def parse_date_range(text: str) -> tuple[date, date]:
    """`YYYY-MM-DD/YYYY-MM-DD`, inclusive, start not after end, at most 190 days wide."""
    first, sep, last = text.partition("/")
    if not sep:
        raise ValueError("Enter a date range as YYYY-MM-DD/YYYY-MM-DD.")
    try:
        start, end = parse_date(first), parse_date(last)
    except ValueError:
        raise ValueError("Enter a date range as YYYY-MM-DD/YYYY-MM-DD.") from None
    if end < start:
        raise ValueError("The start of the date range must not be after its end.")
    if (end - start).days > MAX_DATE_RANGE_DAYS:
        raise ValueError(f"The date range may span at most {MAX_DATE_RANGE_DAYS} days.")
    return start, end


class Params:
    """Reads parameters, collecting every error before raising them together."""

    def __init__(self, params: QueryParams) -> None:
        self.params = params
        self.errors: dict[str, list[str]] = {}

    def get(self, name: str, parse: Callable[[str], T], message: str) -> T | None:
        # An empty value means "no filter", as with Django filters.
        text = self.params.get(name)
        if text is None or text == "":
            return None
        try:
            return parse(text)
        except ValueError as error:
            detail = str(error) if parse is parse_date_range else message
            self.errors[name] = [detail]
            return None

    def integer(self, name: str) -> int | None:
        return self.get(name, int, "Enter a whole number.")

    def day(self, name: str) -> date | None:
        return self.get(name, parse_date, "Enter a valid date (YYYY-MM-DD).")

    def since(self) -> datetime | None:
        return self.get("since", parse_timestamp, "Enter a valid date/time.")

    def check(self) -> None:
        if self.errors:
            raise QueryError(self.errors)


def _updated_since(
    practice: Practice, name: str, since: datetime | None
) -> Callable[[Record], bool]:
    if since is None:
        return lambda record: True
    updated = practice.updated_at_map(name)
    return lambda record: (stamp := updated.get(record["id"])) is not None and stamp >= since


def appointments(practice: Practice, p: Params) -> Iterable[Record]:
    on = p.day("date")
    span = p.get("date_range", parse_date_range, "")
    since = p.since()
    doctor, office, patient = p.integer("doctor"), p.integer("office"), p.integer("patient")
    p.check()
    if on is None and span is None and since is None:
        raise QueryError({"non_field_errors": ["One of since, date or date_range is required."]})
    records = practice.appointments
    # Appointments are listed by start (`appointment_order`), so the days asked for are
    # one slice, found by bisection: paging through a large practice day by day does not
    # scan every appointment on every request.
    days = [(on, on)] if on is not None else []
    days += [span] if span is not None else []
    if days:
        first = max(day for day, _ in days).isoformat()
        last = min(day for _, day in days).isoformat()
        start = bisect.bisect_left(records, first, key=_start)
        # "T24" sorts after every time of the last day and before the next day.
        records = records[start : bisect.bisect_left(records, f"{last}T24", key=_start)]
    wanted = [
        (name, ref(resource, value))
        for name, resource, value in (
            ("doctor", "doctors", doctor),
            ("office", "offices", office),
            ("patient", "patients", patient),
        )
        if value is not None
    ]
    # Comprehensions, not a per-record predicate call: a `since` sync of a large
    # practice filters every appointment on every page.
    for name, path in wanted:
        records = [record for record in records if record[name] == path]
    if since is not None:
        updated = practice.updated_at_map("appointments")
        records = [
            record
            for record in records
            if (stamp := updated.get(record["id"])) is not None and stamp >= since
        ]
    return records


def _start(record: Record) -> str:
    return record["scheduled_time"]


def appointment_templates(practice: Practice, p: Params) -> Iterable[Record]:
    # Templates repeat every week, so every template is available in any week.
    p.day("available")
    office = p.integer("office")
    week_day = p.get("week_day", _week_day, "Enter a whole number from 0 to 6.")
    p.check()
    for record in practice.appointment_templates:
        if office is not None and record["office"] != ref("offices", office):
            continue
        if week_day is not None and record["week_day"] != week_day:
            continue
        yield record


def _week_day(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 6:
        raise ValueError(text)
    return value


def documents(practice: Practice, p: Params) -> Iterable[Record]:
    doctor, patient, since = p.integer("doctor"), p.integer("patient"), p.since()
    p.check()
    recent = _updated_since(practice, "documents", since)
    for record in practice.documents:
        if doctor is not None and record["doctor"] != ref("doctors", doctor):
            continue
        if patient is not None and record["patient"] != ref("patients", patient):
            continue
        if recent(record):
            yield record


def _gender(text: str) -> str:
    if text not in GENDERS:
        raise ValueError(text)
    return text


def patients(practice: Practice, p: Params) -> Iterable[Record]:
    doctor, since = p.integer("doctor"), p.since()
    born = p.day("date_of_birth")
    gender = p.get("gender", _gender, "Select one of Male, Female or Other.")
    p.check()
    # Every word of every `search` value must match a name or the email (narrowing).
    words = [word.lower() for value in p.params.getlist("search") for word in value.split()]
    recent = _updated_since(practice, "patients", since)
    for record in practice.patients:
        if doctor is not None and record["doctor"] != ref("doctors", doctor):
            continue
        if born is not None and record["date_of_birth"] != born.isoformat():
            continue
        if gender is not None and record["gender"] != gender:
            continue
        if words:
            haystack = (record["first_name"], record["last_name"], record["email"])
            if not all(any(word in field.lower() for field in haystack) for word in words):
                continue
        if recent(record):
            yield record


def transactions(practice: Practice, p: Params) -> Iterable[Record]:
    doctor, since = p.integer("doctor"), p.since()
    if doctor is None and "doctor" not in p.errors:
        p.errors["doctor"] = ["This field is required."]
    p.check()
    recent = _updated_since(practice, "transactions", since)
    for record in practice.transactions:
        if record["doctor"] == doctor and recent(record):
            yield record


def select(practice: Practice, resource: SandboxResource, params: QueryParams) -> list[Record]:
    """The records of `resource` that the query's filters keep, in list order.

    Call with `practice.lock` held: the records are the live ones. Raises
    `QueryError` for missing or malformed parameters. The selection is remembered
    (`Practice.memo`) for the query's next pages, which differ only in paging.
    """
    selector = resource.select
    if selector is None:
        return list(practice.resource(resource.name))
    # In the order given: of a repeated parameter, the last one counts.
    query = tuple((k, v) for k, v in params.multi_items() if k not in PAGING_PARAMS)
    selected = practice.memo(
        ("select", resource.name, query), lambda: list(selector(practice, Params(params)))
    )
    return list(selected)  # the caller's own list: the remembered one is shared
