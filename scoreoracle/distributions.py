"""Distributions with closed-form log-density and score, in torch.

Every distribution here has ``sample(n, generator)``, ``log_density(x)`` and
``score(x)`` (the score is ∇ₓ log f, not sklearn's log-likelihood).  Points are
``(..., m, d)``; log-densities ``(..., m)`` in nats; scores ``(..., m, d)``.

``GaussianMixture`` carries optional leading batch dimensions, so one object can
hold a whole training batch of mixtures (``random_gmm``) and evaluate all of them
in one call.
"""

from __future__ import annotations

import math

import torch

from .gaussian import LOG_2PI



class GaussianMixture:
    """Mixture of Gaussians, possibly batched.

    Parameters
    ----------
    weights : (..., k) mixture weights (rows sum to 1; zero weights switch a component off).
    means : (..., k, d)
    covariances : (..., k, d, d) symmetric positive definite.
    """

    def __init__(self, weights, means, covariances):
        self.means = torch.as_tensor(means)
        dtype = self.means.dtype if self.means.is_floating_point() else torch.float64
        self.means = self.means.to(dtype)
        self.weights = torch.as_tensor(weights, dtype=dtype, device=self.means.device)
        self.covariances = torch.as_tensor(covariances, dtype=dtype, device=self.means.device)
        self.dim = self.means.shape[-1]
        self._check_parameters()
        self.cholesky = torch.linalg.cholesky(self.covariances)  # Σ = L Lᵀ
        eye = torch.eye(self.dim, dtype=dtype, device=self.means.device)
        # Precision factor W = L⁻ᵀ, so that Σ⁻¹ = W Wᵀ and (x−μ)ᵀΣ⁻¹(x−μ) = ‖(x−μ)ᵀW‖².
        self.precision_factor = torch.linalg.solve_triangular(
            self.cholesky, eye.expand_as(self.covariances), upper=False
        ).transpose(-1, -2)
        log_det_cov = 2.0 * torch.log(torch.diagonal(self.cholesky, dim1=-2, dim2=-1)).sum(-1)
        self._log_norm = torch.log(self.weights) - 0.5 * (log_det_cov + self.dim * LOG_2PI)  # (..., k)

    def _check_parameters(self):
        """A mixture that answers wrongly (weights not summing to 1: log f off by log Σw) or with a
        deep torch error (a covariance that is not positive definite) is refused by name."""
        w, mu, cov = self.weights, self.means, self.covariances
        if mu.ndim < 2 or w.shape != mu.shape[:-1] or cov.shape != mu.shape + (self.dim,):
            raise ValueError(f"a mixture needs weights (..., k), means (..., k, d) and covariances (..., k, d, d); "
                             f"got {tuple(w.shape)}, {tuple(mu.shape)} and {tuple(cov.shape)}")
        for name, t in (("weights", w), ("means", mu), ("covariances", cov)):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"the mixture's {name} contain NaN or infinite values")
        if bool((w < 0).any()):
            raise ValueError(f"mixture weights must be non-negative; the smallest is {w.min().item():.3g}")
        total = w.sum(-1)
        if bool(((total - 1).abs() > 1e-5).any()):
            raise ValueError(f"mixture weights must sum to 1 (got {total.flatten()[0].item():.6g}); "
                             "pass weights / weights.sum(-1, keepdim=True)")
        scale = cov.abs().amax((-1, -2), keepdim=True)
        if bool(((cov - cov.transpose(-1, -2)).abs() > 1e-4 * scale).any()):
            raise ValueError("mixture covariances must be symmetric")
        info = torch.linalg.cholesky_ex(cov).info
        if bool((info > 0).any()):
            raise ValueError(f"mixture covariances must be positive definite; component "
                             f"{int(torch.nonzero(info.flatten() > 0)[0, 0]) % mu.shape[-2]} is not")

    @property
    def n_components(self) -> int:
        return self.means.shape[-2]

    def _component_terms(self, x):
        """Whitened offsets u = (x−μ)ᵀW, (..., m, k, d), and per-component log w_c N_c(x), (..., m, k)."""
        x = torch.as_tensor(x, dtype=self.means.dtype, device=self.means.device)
        diff = x.unsqueeze(-2) - self.means.unsqueeze(-3)  # (..., m, k, d)
        u = torch.einsum("...mki,...kij->...mkj", diff, self.precision_factor)
        log_kernel, _ = self._radial((u * u).sum(-1))
        return u, self._log_norm.unsqueeze(-2) + log_kernel

    def _radial(self, q):
        """Log-kernel and score factor of each component at squared Mahalanobis distances q
        (..., m, k): Gaussian −q/2 and 1 (the score is −factor·Σ⁻¹(x−μ))."""
        return -0.5 * q, torch.ones_like(q)

    def _radius_factor(self, comp, generator):
        """Per-draw scale of the standard normal draws (1 for Gaussians), shape (..., n, 1)."""
        return 1.0

    def log_density(self, x):
        """log f(x), (..., m)."""
        _, log_terms = self._component_terms(x)
        return torch.logsumexp(log_terms, dim=-1)

    def score(self, x):
        """∇ log f(x), (..., m, d)."""
        return self.log_density_and_score(x)[1]

    def log_density_and_score(self, x):
        """(log f(x), ∇ log f(x)) with shapes ((..., m), (..., m, d))."""
        u, log_terms = self._component_terms(x)
        log_f = torch.logsumexp(log_terms, dim=-1)
        resp = torch.exp(log_terms - log_f.unsqueeze(-1))  # responsibilities (..., m, k)
        _, factor = self._radial((u * u).sum(-1))
        # ∇ log f_c = −factor·Σ_c⁻¹(x−μ_c) = −factor·W_c u_c
        comp_scores = -torch.einsum("...mkj,...kij->...mki", u, self.precision_factor)
        return log_f, ((resp * factor).unsqueeze(-1) * comp_scores).sum(-2)

    def sample(self, n: int, generator: torch.Generator | None = None):
        """n i.i.d. samples per mixture, (..., n, d)."""
        batch = self.weights.shape[:-1]
        flat_w = self.weights.reshape(-1, self.n_components)
        comp = torch.multinomial(flat_w, n, replacement=True, generator=generator).reshape(*batch, n)
        eps = torch.randn(*batch, n, self.dim, generator=generator, dtype=self.means.dtype,
                          device=self.means.device)
        idx = comp.unsqueeze(-1)
        mu = torch.gather(self.means, -2, idx.expand(*batch, n, self.dim))
        chol = torch.gather(self.cholesky, -3,
                            idx.unsqueeze(-1).expand(*batch, n, self.dim, self.dim))
        return mu + torch.einsum("...nij,...nj->...ni", chol, eps) * self._radius_factor(comp, generator)


class StudentTMixture(GaussianMixture):
    """Mixture of multivariate Student-t laws, possibly batched: heavy-tailed components.

    Component c has location μ_c, scale matrix Σ_c and ν_c degrees of freedom:
    log f_c(x) = log Γ((ν+d)/2) − log Γ(ν/2) − (d/2) log(νπ) − ½ log det Σ − (ν+d)/2 · log(1 + q/ν),
    q = (x−μ)ᵀΣ⁻¹(x−μ); ∇log f_c = −(ν+d)/(ν+q) · Σ⁻¹(x−μ).

    Parameters as :class:`GaussianMixture` (``covariances`` are the scale matrices) plus
    ``df`` (..., k), ν > 0.
    """

    def __init__(self, weights, means, covariances, df):
        super().__init__(weights, means, covariances)
        self.df = torch.as_tensor(df, dtype=self.means.dtype, device=self.means.device).expand_as(self.weights)
        nu, d = self.df, self.dim
        self._log_norm = (self._log_norm + 0.5 * d * LOG_2PI + torch.lgamma((nu + d) / 2) - torch.lgamma(nu / 2)
                          - 0.5 * d * torch.log(nu * math.pi))

    def _radial(self, q):
        nu = self.df.unsqueeze(-2)
        return -0.5 * (nu + self.dim) * torch.log1p(q / nu), (nu + self.dim) / (nu + q)

    def _radius_factor(self, comp, generator):
        nu = torch.gather(self.df, -1, comp)  # (..., n)
        chi2 = 2 * torch._standard_gamma(nu / 2, generator=generator)
        return torch.sqrt(nu / chi2).unsqueeze(-1)


class WarpedMixture:
    """A mixture pushed through a smooth invertible coordinate-wise warp y = ψ(x), batched.

    Per coordinate k, ψ_k(t) = sinh(a_k t)/a_k (a_k > 0: heavier tails) or asinh(−a_k t)/(−a_k)
    (a_k < 0: lighter tails, compressed); a_k = 0 is the identity.  The log-density follows the
    exact change of variables log f_Y(y) = log f_X(x) − Σ_k log ψ_k'(x_k), x = ψ^{-1}(y), and
    the score is its exact gradient (autograd through the closed form).
    """

    def __init__(self, base, a):
        self.base = base
        self.dim = base.dim
        self.a = torch.as_tensor(a, dtype=base.means.dtype, device=base.means.device)  # (..., d)

    def _forward(self, x):
        a = self.a.unsqueeze(-2)
        safe = torch.where(a == 0, torch.ones_like(a), a)
        heavy = torch.sinh(safe * x) / safe
        light = torch.asinh(safe * x) / safe
        return torch.where(a > 0, heavy, torch.where(a < 0, light, x))

    def _inverse_and_log_jacobian(self, y):
        """x = ψ^{-1}(y) and log|dx/dy| summed over coordinates."""
        a = self.a.unsqueeze(-2)
        safe = torch.where(a == 0, torch.ones_like(a), a)
        # each branch sees only its own coordinates: sinh/cosh of the other's would overflow, and
        # autograd turns the unselected inf into NaN
        u_heavy = torch.where(a > 0, safe * y, torch.zeros_like(y))
        u_light = torch.where(a < 0, safe * y, torch.zeros_like(y))
        x_heavy = torch.asinh(u_heavy) / safe  # inverse of sinh(a t)/a; dx/dy = 1/√(1 + a²y²)
        x_light = torch.sinh(u_light) / safe  # inverse of asinh(a t)/a; dx/dy = cosh(a y)
        x = torch.where(a > 0, x_heavy, torch.where(a < 0, x_light, y))
        log_cosh = u_light.abs() + torch.log1p(torch.exp(-2 * u_light.abs())) - math.log(2)
        log_jac = torch.where(a > 0, -torch.log(torch.hypot(torch.ones_like(y), u_heavy)),
                              torch.where(a < 0, log_cosh, torch.zeros_like(y)))
        return x, log_jac.sum(-1)

    def sample(self, n: int, generator=None):
        return self._forward(self.base.sample(n, generator))

    def log_density(self, y):
        x, log_jac = self._inverse_and_log_jacobian(torch.as_tensor(y, dtype=self.a.dtype))
        return self.base.log_density(x) + log_jac

    def score(self, y):
        return self.log_density_and_score(y)[1]

    def log_density_and_score(self, y):
        y = torch.as_tensor(y, dtype=self.a.dtype)
        if y.requires_grad and torch.is_grad_enabled():  # keep the graph: the score is differentiable too
            log_f = self.log_density(y)
            score, = torch.autograd.grad(log_f.sum(), y, create_graph=True)
            return log_f, score
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            log_f = self.log_density(y)
            score, = torch.autograd.grad(log_f.sum(), y)
        return log_f.detach(), score


def random_rotations(batch: int, d: int, generator=None, dtype=torch.float64):
    """Haar-random orthogonal matrices, (batch, d, d) (QR of a Gaussian matrix, sign-fixed)."""
    g = torch.randn(batch, d, d, generator=generator, dtype=dtype)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def random_gmm(batch: int, d: int, *, modes=(1, 10), mean_range=3.0, variance_range=(0.2, 1.0),
               rotated: bool = True, generator=None, dtype=torch.float64) -> GaussianMixture:
    """The random GMM family of DiScoFormer's training data (Ilin, Sushko, Krishna 2025,
    arXiv:2511.05924, Algorithm 1), ``batch`` independent mixtures.

    Each mixture draws k uniformly from ``modes`` (inclusive); means U[−r, r]^d; covariance
    R diag(v) Rᵀ with variances v ~ U[variance_range] and a Haar rotation R per component;
    weights ∝ U[0.1, 1] (never vanishing, so every mode is populated). Unused component slots
    (k < modes[1]) get weight 0.  ``rotated=False`` keeps every covariance diagonal (the paper's
    Table 5 family at d = 100 is ``modes=(2, 2), rotated=False``).
    """
    k_max = modes[1]
    k = torch.randint(modes[0], k_max + 1, (batch,), generator=generator)
    active = torch.arange(k_max).unsqueeze(0) < k.unsqueeze(1)
    raw = 0.1 + 0.9 * torch.rand(batch, k_max, generator=generator, dtype=dtype)
    raw = raw * active
    weights = raw / raw.sum(-1, keepdim=True)
    means = (2 * torch.rand(batch, k_max, d, generator=generator, dtype=dtype) - 1) * mean_range
    lo, hi = variance_range
    var = lo + (hi - lo) * torch.rand(batch, k_max, d, generator=generator, dtype=dtype)
    if not rotated:
        return GaussianMixture(weights, means, torch.diag_embed(var))
    rot = random_rotations(batch * k_max, d, generator, dtype).reshape(batch, k_max, d, d)
    covs = rot @ torch.diag_embed(var) @ rot.transpose(-1, -2)
    covs = 0.5 * (covs + covs.transpose(-1, -2))
    return GaussianMixture(weights, means, covs)


class Laplace:
    """Product of independent Laplace laws: f(x) = Π_i exp(−|x_i−μ_i|/b_i)/(2b_i).

    The score −sign(x−μ)/b is undefined on the axes (a set of measure zero); 0 is returned there.
    """

    def __init__(self, loc, scale):
        self.loc = torch.as_tensor(loc, dtype=torch.float64)
        self.scale = torch.as_tensor(scale, dtype=torch.float64).expand_as(self.loc)
        self.dim = self.loc.shape[-1]

    def sample(self, n, generator=None):
        u = torch.rand(n, self.dim, generator=generator, dtype=torch.float64) - 0.5
        return self.loc - self.scale * torch.sign(u) * torch.log1p(-2 * u.abs())

    def log_density(self, x):
        x = torch.as_tensor(x, dtype=torch.float64)
        return (-(x - self.loc).abs() / self.scale - torch.log(2 * self.scale)).sum(-1)

    def score(self, x):
        x = torch.as_tensor(x, dtype=torch.float64)
        return -torch.sign(x - self.loc) / self.scale

    def log_density_and_score(self, x):
        return self.log_density(x), self.score(x)


class StudentT:
    """Multivariate Student-t with ν degrees of freedom, location μ and scale matrix Σ.

    log f(x) = const − (ν+d)/2 · log(1 + q/ν), q = (x−μ)ᵀΣ⁻¹(x−μ);
    score = −(ν+d)/(ν+q) · Σ⁻¹(x−μ).
    """

    def __init__(self, df, loc, scale_matrix):
        self.df = float(df)
        self.loc = torch.as_tensor(loc, dtype=torch.float64)
        self.dim = self.loc.shape[-1]
        self.scale_matrix = torch.as_tensor(scale_matrix, dtype=torch.float64)
        self.cholesky = torch.linalg.cholesky(self.scale_matrix)
        self.precision = torch.cholesky_inverse(self.cholesky)
        nu, d = self.df, self.dim
        self._log_norm = (math.lgamma((nu + d) / 2) - math.lgamma(nu / 2) - d / 2 * math.log(nu * math.pi)
                          - torch.log(torch.diagonal(self.cholesky)).sum())

    def sample(self, n, generator=None):
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        chi2 = 2 * torch._standard_gamma(torch.full((n, 1), self.df / 2, dtype=torch.float64),
                                         generator=generator)
        return self.loc + (z @ self.cholesky.T) / torch.sqrt(chi2 / self.df)

    def _quad(self, x):
        diff = torch.as_tensor(x, dtype=torch.float64) - self.loc
        pdiff = diff @ self.precision
        return (diff * pdiff).sum(-1), pdiff

    def log_density(self, x):
        q, _ = self._quad(x)
        return self._log_norm - (self.df + self.dim) / 2 * torch.log1p(q / self.df)

    def score(self, x):
        q, pdiff = self._quad(x)
        return -((self.df + self.dim) / (self.df + q)).unsqueeze(-1) * pdiff

    def log_density_and_score(self, x):
        return self.log_density(x), self.score(x)
