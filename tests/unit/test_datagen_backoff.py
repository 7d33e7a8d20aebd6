"""The retry delay schedule: exponential, jittered, seeded, and `Retry-After` first."""

from __future__ import annotations

import random

from stylewrap.datagen.client import RETRY_AFTER_MAX, backoff_delay

BASE, CAP = 0.5, 30.0


def schedule(seed: int, attempts: int = 8) -> list[float]:
    rng = random.Random(seed)
    return [backoff_delay(attempt, base=BASE, cap=CAP, rng=rng) for attempt in range(attempts)]


def test_each_delay_is_in_the_upper_half_of_a_doubling_ceiling():
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    for seed in range(50):
        assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(schedule(seed), ceilings))


def test_a_seed_gives_one_schedule_and_seeds_spread_it():
    assert schedule(7) == schedule(7)
    assert schedule(7) != schedule(8)
    # workers hit by one outage come back spread over the band, not in the same instant
    fourth = [schedule(seed)[3] for seed in range(200)]
    assert min(fourth) < 2.2 and max(fourth) > 3.8


def test_retry_after_wins_and_is_capped():
    rng = random.Random(0)
    assert backoff_delay(5, base=BASE, cap=CAP, rng=rng, retry_after=0.3) == 0.3
    assert backoff_delay(0, base=BASE, cap=CAP, rng=rng, retry_after=0.0) == 0.0
    assert backoff_delay(0, base=BASE, cap=CAP, rng=rng, retry_after=86400.0) == RETRY_AFTER_MAX
