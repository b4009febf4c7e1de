"""Partition keys outside the partitions are refused naming DRCHRONO_START_DATE and the range."""

import datetime as dt

import dagster as dg
import pytest

from drchrono_assets.day_window import DayWindow
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.partition_keys import check_partition_key, check_partition_range
from drchrono_assets_tests.support.definitions import daily_partitions

# Fixed here, so the messages do not depend on the environment the tests run in.
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="America/Chicago")
ZONE = "DRCHRONO_TIMEZONE, America/Chicago"


@pytest.fixture
def last() -> str:
    """The last partition now: yesterday in the partitions' zone."""
    return PARTITIONS.get_partition_keys()[-1]


def _refusal(key: str) -> str:
    with pytest.raises(ConfigurationError) as raised:
        check_partition_key(key, PARTITIONS)
    return str(raised.value)


def test_partition_keys_in_range_are_accepted(last: str) -> None:
    assert check_partition_key("2024-01-01", PARTITIONS) == "2024-01-01"
    assert check_partition_key(last, PARTITIONS) == last
    assert check_partition_range("2024-03-04", "2024-03-08", PARTITIONS) == DayWindow(
        dt.date(2024, 3, 4), dt.date(2024, 3, 8)
    )


def test_a_key_before_the_start_date_names_it_and_the_range(last: str) -> None:
    assert _refusal("2023-01-01") == (
        "partition '2023-01-01' is before the first partition 2024-01-01 (DRCHRONO_START_DATE): "
        f"valid partitions are 2024-01-01 to {last}; set DRCHRONO_START_DATE=2023-01-01 or "
        "earlier to include it"
    )


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("yesterday", "not a date in YYYY-MM-DD form"),
        ("20240105", "not a date in YYYY-MM-DD form"),
        ("2024-13-01", "not a valid date (month must be in 1..12)"),
    ],
)
def test_a_key_that_is_no_date_says_which_dates_are_partitions(
    last: str, key: str, problem: str
) -> None:
    assert _refusal(key) == (
        f"{key!r} is not a partition key, as it is {problem}: give a date YYYY-MM-DD from "
        f"2024-01-01 (DRCHRONO_START_DATE) to {last} (the last day that has ended in {ZONE})"
    )


def test_a_day_that_has_not_ended_is_not_a_partition_yet(last: str) -> None:
    today = (dt.date.fromisoformat(last) + dt.timedelta(days=1)).isoformat()
    assert _refusal(today) == (
        f"partition {today!r} is after the last partition {last}, the last day that has ended "
        f"in DRCHRONO_TIMEZONE (America/Chicago): valid partitions are 2024-01-01 "
        f"(DRCHRONO_START_DATE) to {last}; a day becomes a partition once it has ended"
    )


def test_a_range_names_its_bad_end_or_its_order() -> None:
    with pytest.raises(ConfigurationError, match=r"^partition '2023-12-30' is before the first"):
        check_partition_range("2023-12-30", "2024-01-02", PARTITIONS)
    with pytest.raises(ConfigurationError, match=r"^'tomorrow' is not a partition key"):
        check_partition_range("2024-01-02", "tomorrow", PARTITIONS)
    with pytest.raises(ConfigurationError) as raised:
        check_partition_range("2024-03-08", "2024-03-04", PARTITIONS)
    assert str(raised.value) == (
        "partition range 2024-03-08...2024-03-04 ends before it starts: give the earlier day "
        "first, 2024-03-04...2024-03-08"
    )


def test_a_start_date_of_today_has_no_partitions_yet() -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    with pytest.raises(ConfigurationError) as raised:
        check_partition_key("2024-01-01", dg.DailyPartitionsDefinition(start_date=today))
    assert str(raised.value) == (
        f"there are no partitions yet, since the first, {today} (DRCHRONO_START_DATE), becomes "
        "one only once it has ended in DRCHRONO_TIMEZONE (UTC): set DRCHRONO_START_DATE earlier "
        "to materialize past days"
    )


def test_keys_are_checked_against_a_practice_partitions() -> None:
    first = daily_partitions.get_partition_keys()[0]
    assert check_partition_key(first, daily_partitions) == first
    before = (dt.date.fromisoformat(first) - dt.timedelta(days=1)).isoformat()
    with pytest.raises(ConfigurationError, match=f"is before the first partition {first} "):
        check_partition_key(before, daily_partitions)
