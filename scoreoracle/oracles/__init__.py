"""Oracles: the pretrained DiScoFormer, the Gaussian KDE, the exact law and the Gaussian fit."""

from .exact import ExactOracle, GaussianFitOracle
from .kde import KDEOracle
from .pretrained import DiScoFormerOracle, PretrainedOracle, load

__all__ = ["DiScoFormerOracle", "PretrainedOracle", "load", "KDEOracle", "ExactOracle", "GaussianFitOracle"]
