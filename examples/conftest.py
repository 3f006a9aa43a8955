from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def primes() -> list[int]:
    """An expensive module fixture: its cost lands in the setup phase of the first test."""
    sieve = [True] * 400_000
    sieve[0:2] = [False, False]
    for n in range(2, int(len(sieve) ** 0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = [False] * len(sieve[n * n :: n])
    return [n for n, is_prime in enumerate(sieve) if is_prime]
