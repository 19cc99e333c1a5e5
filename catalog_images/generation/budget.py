"""The run's spending cap: no request starts whose worst-case cost could break it."""

from __future__ import annotations

from collections.abc import Callable


class Budget:
    """Money spent and reserved by requests in flight, against an optional cap in USD."""

    def __init__(self, cap_usd: float | None,
                 on_reached: Callable[[Budget], None] | None = None) -> None:
        self.cap_usd = cap_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self.reached = False  # a request was refused: the cap holds rows back
        self.on_reached = on_reached  # told once, at the first refusal (the run's events)

    def reserve(self, amount: float) -> bool:
        """Hold ``amount`` for a request about to start; False when it could break the cap."""
        if self.cap_usd is not None and (
            self.spent_usd + self.reserved_usd + amount > self.cap_usd + 1e-9
        ):
            if not self.reached and self.on_reached is not None:
                self.on_reached(self)
            self.reached = True
            return False
        self.reserved_usd += amount
        return True

    def settle(self, amount: float, billed: bool, cost: float | None = None) -> None:
        """Release a reservation; count it as spent when the provider billed the request:
        ``cost`` when the answer said what it cost (its usage), else the reserved amount."""
        self.reserved_usd -= amount
        if billed:
            self.spent_usd += amount if cost is None else cost
