"""The standard normal reference every core's log-density is relative to."""

from __future__ import annotations

import math


def standard_normal_log_density(z):
    """log N(z; 0, I) of points z (..., d), in z's dtype."""
    return -0.5 * (z * z).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)
