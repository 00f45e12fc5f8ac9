"""scoreoracle: a pretrained DiScoFormer score oracle.

Given i.i.d. samples (n, d) of an unknown density f, an oracle returns log f (nats) and the
score ∇ₓ log f at any query points:

>>> import scoreoracle
>>> oracle = scoreoracle.load()                       # picks the checkpoint from d
>>> log_f, score = oracle.log_density_and_score(samples, queries)

``KDEOracle`` (Gaussian KDE, closed-form score) and ``ExactOracle`` (a known distribution)
have the same methods, so every solver accepts any of them.
"""

from .distributions import GaussianMixture, Laplace, StudentT, random_gmm
from .kde import KDEOracle
from .oracle import ExactOracle, GaussianFitOracle, Oracle
from .pretrained import DiScoFormerOracle, load
from .whitening import SingularSamplesError
from .checkpoint import WeightsIntegrityError

__version__ = "0.1.0"

__all__ = ["load", "Oracle", "DiScoFormerOracle", "KDEOracle", "ExactOracle", "GaussianFitOracle", "GaussianMixture",
           "Laplace", "StudentT", "random_gmm", "SingularSamplesError", "WeightsIntegrityError",
           "__version__"]
