"""Unit tests: the request budget waits instead of overrunning the API's limits."""

from drchrono_assets.api.rate_budget import IN_FLIGHT_SECONDS, RequestBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_burst_limit_spaces_requests_within_a_second() -> None:
    clock = FakeClock()
    budget = RequestBudget(per_hour=100, per_second=2, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        budget.release(budget.acquire())
    assert budget.used == 4
    assert clock.slept == [1.0]


def test_hourly_budget_waits_for_the_oldest_request_to_age_out() -> None:
    clock = FakeClock()
    waits: list[float] = []
    budget = RequestBudget(
        per_hour=3, per_second=10, clock=clock, sleep=clock.sleep, on_wait=waits.append
    )
    for _ in range(3):
        budget.release(budget.acquire())
        clock.now += 10
    budget.acquire()
    assert clock.now == 3600.0
    assert waits == [3570.0]


def test_a_request_in_flight_holds_its_slot_until_answered() -> None:
    clock = FakeClock()
    budget = RequestBudget(
        per_hour=1, per_second=10, clock=clock, sleep=clock.sleep, window_seconds=100.0
    )
    ticket = budget.acquire()
    clock.now += 250.0  # still unanswered after more than the window
    budget.release(ticket)
    budget.release(budget.acquire())  # the slot ages from the answer
    assert clock.now == 250.0 + 100.0


def test_a_request_lost_with_its_process_holds_its_slot_a_bounded_time() -> None:
    clock = FakeClock()
    budget = RequestBudget(per_hour=1, per_second=10, clock=clock, sleep=clock.sleep)
    budget.acquire()  # never answered: its process died
    budget.release(budget.acquire())
    assert clock.now == IN_FLIGHT_SECONDS + 3600.0


DAY = 86400.0


def test_clock_set_back_a_day_costs_at_most_one_window_not_a_day() -> None:
    clock = FakeClock()
    clock.now = 2 * DAY
    budget = RequestBudget(per_hour=100, per_second=10, clock=clock, sleep=clock.sleep)
    for _ in range(20):  # two seconds' worth: the burst limit is full
        budget.release(budget.acquire())
    clock.now -= DAY
    clock.slept.clear()
    for _ in range(3):
        budget.release(budget.acquire())
    # The stamps from "tomorrow" count as sent now: one second's wait for the burst limit.
    assert sum(clock.slept) <= 1.0


def test_full_hourly_budget_after_the_clock_went_back_waits_one_window() -> None:
    clock = FakeClock()
    clock.now = 2 * DAY
    budget = RequestBudget(per_hour=3, per_second=10, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        budget.release(budget.acquire())
    clock.now -= DAY
    clock.slept.clear()
    budget.acquire()
    assert sum(clock.slept) == 3600.0


def test_pause_after_the_clock_went_back_lasts_its_own_length() -> None:
    clock = FakeClock()
    clock.now = 2 * DAY
    budget = RequestBudget(per_hour=100, per_second=10, clock=clock, sleep=clock.sleep)
    budget.pause(30)
    clock.now -= DAY
    budget.acquire()
    assert clock.slept == [30.0]


def test_pause_still_holds_without_a_clock_change() -> None:
    clock = FakeClock()
    budget = RequestBudget(per_hour=100, per_second=10, clock=clock, sleep=clock.sleep)
    budget.pause(30)
    clock.now += 10
    budget.pause(5)  # shorter than what is left: the longer pause stands
    budget.acquire()
    assert clock.slept == [20.0]
