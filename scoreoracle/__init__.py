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

import os

# OpenMP threads that spin after a parallel region starve every other parallel region sharing the
# cores (the numba particle kernels and torch alternate in every solver step, and training runs
# beside other work): make idle threads sleep.  Read when the OpenMP runtime starts, i.e. before
# torch is first imported; a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .contract import FittedOracle, FittedScoreOracle, Oracle, ScoreOracle  # noqa: E402
from .distributions import GaussianMixture, Laplace, StudentT, random_gmm  # noqa: E402
from .oracles import DiScoFormerOracle, ExactOracle, GaussianFitOracle, KDEOracle, PretrainedOracle, load  # noqa: E402
from .validation import OutlierWarning, RepeatedSamplesWarning  # noqa: E402
from .weights import WeightsIntegrityError  # noqa: E402
from .whitening import SingularSamplesError  # noqa: E402

__version__ = "0.2.0"

__all__ = ["load", "ScoreOracle", "FittedScoreOracle", "Oracle", "FittedOracle", "DiScoFormerOracle", "PretrainedOracle",
           "KDEOracle", "ExactOracle", "GaussianFitOracle", "GaussianMixture", "Laplace", "StudentT",
           "random_gmm", "SingularSamplesError", "RepeatedSamplesWarning", "OutlierWarning", "WeightsIntegrityError",
           "__version__"]
