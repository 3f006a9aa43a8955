"""Many tiny tests: each costs little, together they add up."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("value", range(50))
def test_square_is_non_negative(value: int) -> None:
    assert value * value >= 0
