"""Core networks: map whitened context points (B, n, d) and queries (B, m, d) to the whitened
log-density (B, m) and score (B, m, d).

Every core has a class attribute ``architecture`` (the tag stored in its weights' metadata), a
``config`` dataclass with ``to_dict``/``from_dict``, and the inference interface the oracles use:
``encode(context, log_weights, n_eff, chunk_size)`` → an encoded context, ``decode(queries,
encoded)`` and ``at_context(encoded)``.  These return the log-density *relative to the standard
normal* (log f_w − log N(z; 0, I)) and the score, so the oracle can add the large Gaussian term in
float64; ``forward`` (training) returns the full log f_w.
"""

from __future__ import annotations

import torch

from .equivariant import EquivariantConfig, EquivariantCore
from .transformer import TransformerConfig, TransformerCore

ARCHITECTURES = {core.architecture: (core, config) for core, config in
                 ((TransformerCore, TransformerConfig), (EquivariantCore, EquivariantConfig))}


def build_core(architecture: str, config: dict):
    """A fresh (untrained) core of the tagged architecture from its config dict.  Its random
    initialisation leaves torch's global random stream as it was (loading weights into it must
    not change a user's seeded draws)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; this version knows {sorted(ARCHITECTURES)} "
                         "(a newer scoreoracle may be needed)")
    core_class, config_class = ARCHITECTURES[architecture]
    with torch.random.fork_rng(devices=[]):
        return core_class(config_class.from_dict(config))


__all__ = ["ARCHITECTURES", "build_core", "EquivariantConfig", "EquivariantCore", "TransformerConfig",
           "TransformerCore"]
