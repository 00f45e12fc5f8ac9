"""Shared by the examples: command lines and figure handling (headless)."""

import argparse
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"  # examples/out/, wherever a script is run from


def default_out(filename: str) -> str:
    """Default path of an example's figure, inside examples/out/ (ignored by git)."""
    return str(OUT / filename)


def landau_arguments(doc: str, figure_name: str, argv=None) -> argparse.Namespace:
    """The Landau examples' command line: --n particles, --t-end, Heun step --dt and the figure
    path --out (default examples/out/<figure_name>); described by the docstring's first line."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--t-end", type=float, default=1.0)
    parser.add_argument("--dt", type=float, default=0.05)
    parser.add_argument("--out", default=default_out(figure_name))
    return parser.parse_args(argv)


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
