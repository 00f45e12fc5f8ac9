"""Solvers that consume a score oracle: Fokker–Planck and Landau particles, SD-KDE, Fisher
information and entropy.  Every solver accepts any oracle with ``score(samples, queries=None)``
(and ``log_density`` where densities are needed): the DiScoFormer oracle, ``KDEOracle``,
``ExactOracle``, :class:`BlobOracle`, or a user-written one.
"""

from .blob import BlobOracle
from .fisher import Estimate, entropy, fisher_information, relative_fisher_information
from .fokker_planck import simulate_fokker_planck
from .landau import landau_field, simulate_landau
from .particles import SolverDivergenceError, Trajectory
from .sd_kde import SDKDE, sd_kde

__all__ = ["simulate_fokker_planck", "simulate_landau", "landau_field", "Trajectory", "SolverDivergenceError",
           "BlobOracle", "sd_kde", "SDKDE", "fisher_information", "relative_fisher_information", "entropy",
           "Estimate"]
