"""What every core config shares: JSON round trips and the context-size feature."""

from __future__ import annotations

import math
from dataclasses import asdict

from ..validation import check_positive_int

REFERENCE_SIZE = 1024  # the context size whose log-size feature is 0


class ConfigDict:
    """``to_dict``/``from_dict`` for frozen dataclass configs (JSON turns tuples into lists)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def check_positive_ints(config, names) -> None:
    """Refuse a config whose named fields are not positive integers: a bad size fails here, by
    name, not as a shape error deep in a forward pass."""
    for name in names:
        check_positive_int(getattr(config, name), name)


def log_size(n_eff: float, cap: float | None = None) -> float:
    """The log-size feature (log n − log 1024)/2 of a context of n_eff (effective) points, with n
    capped at ``cap`` when given (a core extrapolates poorly beyond its largest training context)."""
    n = min(n_eff, cap) if cap else n_eff
    return (math.log(n) - math.log(REFERENCE_SIZE)) / 2
