"""Every example runs end to end with tiny arguments and writes its figure."""

import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

CASES = {
    "any_dimension": ["--dims", "2", "5", "--n", "200", "--queries", "100"],
    "quickstart": ["--n", "200", "--queries", "100"],
    "landau_bkw": ["--n", "150", "--t-end", "0.2", "--dt", "0.1"],
    "landau_anisotropic": ["--n", "150", "--t-end", "0.2", "--dt", "0.1"],
    "ou_relaxation": ["--n", "150"],
    "sd_kde_demo": ["--sizes", "100", "--seeds", "1"],
    "fisher_vs_n": ["--sizes", "100", "--seeds", "1"],
    "dask_cluster": ["--n", "400", "--workers", "2", "--t-end", "0.2"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name, tmp_path):
    module = __import__(name)
    out = tmp_path / f"{name}.png"
    result = module.main([*CASES[name], "--out", str(out)])
    assert out.exists() and out.stat().st_size > 10_000
    assert result
