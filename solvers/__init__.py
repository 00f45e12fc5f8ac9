"""Solvers that consume a score oracle: Fokker–Planck and Landau particles, SD-KDE, Fisher
information and entropy.  Every solver accepts any oracle of the contract
:class:`scoreoracle.contract.ScoreOracle` (the DiScoFormer oracle, ``KDEOracle``, ``ExactOracle``,
:class:`BlobOracle`, or a user-written one); the particle solvers also accept a time-dependent
analytic oracle (:class:`solvers.exact.AnalyticFlowOracle`).
"""

from .blob import BlobOracle
from .fisher import Estimate, ScoreCheckWarning, entropy, fisher_information, relative_fisher_information
from .fokker_planck import simulate_fokker_planck
from .collisions import landau_field
from .landau import simulate_landau
from .run import RunOptions, SolverDivergenceError
from .sd_kde import SDKDE, sd_kde
from .trajectory import Trajectory

__all__ = ["simulate_fokker_planck", "simulate_landau", "landau_field", "Trajectory", "RunOptions",
           "SolverDivergenceError", "BlobOracle", "sd_kde", "SDKDE", "fisher_information",
           "relative_fisher_information", "entropy", "Estimate", "ScoreCheckWarning"]
