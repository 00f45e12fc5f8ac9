"""Shared by the examples: the oracles they compare and figure handling (headless)."""

from pathlib import Path

from scoreoracle import KDEOracle, load
from solvers import BlobOracle

OUT = Path(__file__).resolve().parent / "out"  # examples/out/, wherever a script is run from


def default_out(filename: str) -> str:
    """Default path of an example's figure, inside examples/out/ (ignored by git)."""
    return str(OUT / filename)


def standard_oracles(include_blob: bool = True) -> dict:
    """The shipped DiScoFormer, Scott KDE and (optionally) the blob method."""
    oracles = {"DiScoFormer": load(), "KDE (Scott)": KDEOracle("scott")}
    if include_blob:
        oracles["blob"] = BlobOracle()
    return oracles


def figure(nrows=1, ncols=1, figsize=(6, 4)):
    """A new matplotlib figure on the non-interactive Agg backend: (fig, axes)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt.subplots(nrows, ncols, figsize=figsize)


def save(fig, out):
    """Write the figure (creating folders), close it and say where it went."""
    import matplotlib.pyplot as plt
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"figure written to {out}")
