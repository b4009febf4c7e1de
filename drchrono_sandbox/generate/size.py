"""`PracticeSize`: how big the synthetic practice is, and its presets by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class PracticeSize:
    """How big the synthetic practice is. The default is the small practice the sandbox
    has always served; `PracticeSize.LARGE` is a busy one, for benchmarks.

    `visits_per_day` is the visit slots of a doctor's weekday, before the lunch break
    and the odd extra or missing slot. Doctors beyond the three named ones are made up
    deterministically (ids from 104, users from 306).
    """

    SMALL: ClassVar[PracticeSize]
    LARGE: ClassVar[PracticeSize]

    doctors: int = 3
    patients: int = 300
    visits_per_day: int = 8

    def __post_init__(self) -> None:
        # Doctor ids stay within 101-199; more than 24 slots would not fit in the day.
        if not 1 <= self.doctors <= 99:
            raise ValueError(f"doctors must be 1 to 99, not {self.doctors}")
        if self.patients < 1:
            raise ValueError(f"patients must be at least 1, not {self.patients}")
        if not 1 <= self.visits_per_day <= 24:
            raise ValueError(f"visits_per_day must be 1 to 24, not {self.visits_per_day}")

    @classmethod
    def from_name(cls, name: str) -> PracticeSize:
        """A preset by name: `small` or `large` (any case); `ValueError` otherwise."""
        try:
            return SIZES[name.lower()]
        except KeyError:
            raise ValueError(f"unknown practice size {name!r}: one of {', '.join(SIZES)}") from None


SMALL = PracticeSize()
#: 8 doctors x (12 visits + lunch) = ~100 appointments a weekday.
LARGE = PracticeSize(doctors=8, patients=5000, visits_per_day=12)
PracticeSize.SMALL, PracticeSize.LARGE = SMALL, LARGE
#: The presets by name, for command lines.
SIZES: dict[str, PracticeSize] = {"small": SMALL, "large": LARGE}
