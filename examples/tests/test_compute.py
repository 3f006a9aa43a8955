"""CPU-bound tests: most of their energy is CPU time."""

from __future__ import annotations

import hashlib

import pytest


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@pytest.mark.parametrize("n", [18, 22, 25])
def test_fibonacci(n: int) -> None:
    assert fib(n) == fib(n - 1) + fib(n - 2)


def test_hashing_many_blocks() -> None:
    digest = b""
    for i in range(60_000):
        digest = hashlib.sha256(digest + i.to_bytes(4, "little")).digest()
    assert len(digest) == 32


def test_prime_count(primes: list[int]) -> None:
    assert len(primes) == 33_860


def test_twin_primes(primes: list[int]) -> None:
    prime_set = set(primes)
    twins = sum(1 for p in primes if p + 2 in prime_set)
    assert twins > 1000
