"""The oracles every example compares: the shipped DiScoFormer, Scott KDE and the blob method."""

from scoreoracle import KDEOracle, load
from solvers import BlobOracle


def standard_oracles(include_blob: bool = True) -> dict:
    oracles = {"DiScoFormer": load(), "KDE (Scott)": KDEOracle("scott")}
    if include_blob:
        oracles["blob"] = BlobOracle()
    return oracles
