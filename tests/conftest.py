import pytest
import torch

from scoreoracle.models import TransformerConfig, TransformerCore


def random_core(dim: int, seed: int = 0) -> TransformerCore:
    """A small untrained core (with a kernel-attention layer) and non-zero heads, so outputs
    depend on every weight."""
    torch.manual_seed(seed)
    core = TransformerCore(TransformerConfig(dim=dim, width=32, depth=2, heads=2, ffn=64, kernel_heads=4))
    for head in (core.head_log_density, core.head_score):
        torch.nn.init.normal_(head.weight, std=0.3)
    return core.eval()


@pytest.fixture
def rng():
    import numpy as np
    return np.random.default_rng(0)
