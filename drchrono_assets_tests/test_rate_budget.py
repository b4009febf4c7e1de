"""Unit tests: the request budget waits instead of overrunning the API's limits."""

from drchrono_assets.api.rate_budget import RequestBudget


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
        budget.acquire()
    assert budget.used == 4
    assert clock.slept == [1.0]


def test_hourly_budget_waits_for_the_oldest_request_to_age_out() -> None:
    clock = FakeClock()
    waits: list[float] = []
    budget = RequestBudget(
        per_hour=3, per_second=10, clock=clock, sleep=clock.sleep, on_wait=waits.append
    )
    for _ in range(3):
        budget.acquire()
        clock.now += 10
    budget.acquire()
    assert clock.now == 3600.0
    assert waits == [3570.0]
