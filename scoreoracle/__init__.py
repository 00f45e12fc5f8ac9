"""scoreoracle: a pretrained DiScoFormer score oracle.

Given i.i.d. samples (n, d) of an unknown density f, an oracle returns log f (nats) and the
score ∇ₓ log f at any query points:

>>> import scoreoracle
>>> oracle = scoreoracle.load()
>>> fitted = oracle.fit(samples)                      # whiten + encode the samples once
>>> log_f, score = fitted.log_density_and_score(queries)

``KDEOracle`` (Gaussian KDE, closed-form score), ``ExactOracle`` (a known distribution) and
``GaussianFitOracle`` follow the same contract (:mod:`scoreoracle.contract`), so every solver
accepts any of them.
"""

from .contract import FittedOracle, FittedScoreOracle, Oracle, ScoreOracle
from .distributions import GaussianMixture, Laplace, StudentT, random_gmm
from .oracles import DiScoFormerOracle, ExactOracle, GaussianFitOracle, KDEOracle, load
from .weights import WeightsIntegrityError
from .whitening import SingularSamplesError

__version__ = "0.2.0"

__all__ = ["load", "ScoreOracle", "FittedScoreOracle", "Oracle", "FittedOracle", "DiScoFormerOracle",
           "KDEOracle", "ExactOracle", "GaussianFitOracle", "GaussianMixture", "Laplace", "StudentT",
           "random_gmm", "SingularSamplesError", "WeightsIntegrityError", "__version__"]
