"""Time limits for fetching: one per fetch, and one per request that all its fetches share."""

from __future__ import annotations

import time


class Deadline:
    """A point in time; ``seconds`` is the budget it was made with (for messages)."""

    def __init__(self, seconds: float, end: float | None = None, cut_by: Deadline | None = None) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds if end is None else end
        self.cut_by = cut_by  # the shared budget that ends this deadline early, if one does

    def left(self) -> float:
        """Seconds left, 0 once none are."""
        return max(0.0, self.end - time.monotonic())

    def remaining(self) -> float:
        """Seconds left; raises TimeoutError once none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError("fetch deadline passed")
        return left

    def within(self, budget: Deadline | None) -> Deadline:
        """This deadline, or the shared ``budget``'s end if that comes first."""
        if budget is None or budget.end >= self.end:
            return self
        return Deadline(self.seconds, budget.end, cut_by=budget)
