"""The ten list resources the sandbox serves, and what it knows of each: one row each.

A row names the resource (its path is `/api/<name>`), the field that dates a record
(None: undated, a client takes the whole list) and its query filters (`filters`; None:
the list takes none). The generator (`generate`) makes the records, under the same name.
"""

from __future__ import annotations

from dataclasses import dataclass

from drchrono_sandbox import filters


@dataclass(frozen=True)
class SandboxResource:
    """One list resource of the API."""

    name: str
    day_field: str | None = None
    select: filters.Selector | None = None


#: In the reference's order.
SANDBOX_RESOURCES: tuple[SandboxResource, ...] = (
    SandboxResource("appointments", "scheduled_time", filters.appointments),
    SandboxResource("appointment_profiles"),
    SandboxResource("appointment_templates", select=filters.appointment_templates),
    SandboxResource("doctors"),
    SandboxResource("documents", "date", filters.documents),
    SandboxResource("offices"),
    SandboxResource("patients", select=filters.patients),
    SandboxResource("reminder_profiles"),
    SandboxResource("users"),
    SandboxResource("transactions", "date", filters.transactions),
)
#: The resources by name.
BY_NAME: dict[str, SandboxResource] = {resource.name: resource for resource in SANDBOX_RESOURCES}
#: Their names, in order.
RESOURCES: tuple[str, ...] = tuple(BY_NAME)
#: The field that dates a record, of the resources whose records are dated.
DAY_FIELDS: dict[str, str] = {
    resource.name: resource.day_field for resource in SANDBOX_RESOURCES if resource.day_field
}
