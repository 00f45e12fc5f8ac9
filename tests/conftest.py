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


@pytest.fixture(scope="module")
def single_thread():
    """One thread for torch and numba while a module runs (modules opt in with
    ``pytestmark = pytest.mark.usefixtures("single_thread")``): the calls are tiny, the machine
    small and shared, and numba's OpenMP workers spinning after a parallel kernel slow the next
    torch calls by ~100× when both use two threads."""
    import numba
    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(torch_threads)
    numba.set_num_threads(numba_threads)
