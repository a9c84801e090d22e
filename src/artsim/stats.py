"""Small statistics shared by evaluation and model selection.

An exact sign test compares two models answering the same queries: only the queries where they
differ carry information, and under "no difference" each of those is a fair coin.
"""

from __future__ import annotations

import math

__all__ = ["SIGNIFICANCE", "sign_test"]

SIGNIFICANCE = 0.05


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test (binomial, p = 1/2) of ``wins`` against ``losses``.

    >>> sign_test(0, 0), round(sign_test(1, 3), 3), round(sign_test(0, 10), 4)
    (1.0, 0.625, 0.002)
    """
    n, low = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(low + 1)) / 2**n  # exact ints: n may pass 1023
    return float(min(1.0, 2.0 * tail))
