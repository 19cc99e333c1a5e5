"""The run's spending cap: no request starts whose worst-case cost could break it."""

from __future__ import annotations


class Budget:
    """Money spent and reserved by requests in flight, against an optional cap in USD."""

    def __init__(self, cap_usd: float | None) -> None:
        self.cap_usd = cap_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0

    def reserve(self, amount: float) -> bool:
        """Hold ``amount`` for a request about to start; False when it could break the cap."""
        if self.cap_usd is not None and (
            self.spent_usd + self.reserved_usd + amount > self.cap_usd + 1e-9
        ):
            return False
        self.reserved_usd += amount
        return True

    def settle(self, amount: float, billed: bool, cost: float | None = None) -> None:
        """Release a reservation; count it as spent when the provider billed the request:
        ``cost`` when the answer said what it cost (its usage), else the reserved amount."""
        self.reserved_usd -= amount
        if billed:
            self.spent_usd += amount if cost is None else cost
