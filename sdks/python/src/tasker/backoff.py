"""Capped exponential backoff with jitter, for retrying an unavailable server.

The n-th consecutive failure waits ``initial * multiplier**(n-1)``, at most
``maximum``, shortened by up to ``jitter`` (a fraction) so that workers that
lost the same server do not come back in lockstep. Pure arithmetic: the
random part is passed in, so the schedule is testable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.2
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.25

    def delay(self, failures: int) -> float:
        """The wait in seconds after ``failures`` consecutive failures, before jitter."""
        exponent = min(max(failures - 1, 0), 64)
        return min(self.initial * max(self.multiplier, 1.0) ** exponent, self.maximum)

    def next_delay(
        self, failures: int, retry_after: Optional[float] = None, unit: Optional[float] = None
    ) -> float:
        """The jittered wait, never shorter than the server's ``Retry-After``."""
        unit = random.random() if unit is None else unit
        wait = self.delay(failures) * (1.0 - min(max(self.jitter, 0.0), 1.0) * unit)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait
