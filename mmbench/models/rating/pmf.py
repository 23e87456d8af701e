"""PMF: probabilistic matrix factorisation (Salakhutdinov and Mnih 2008): unbiased MF with Gaussian priors."""

from __future__ import annotations

from mmbench.models.rating.svd import SVD


class PMF(SVD):
    """``r̂_ui = q_iᵀ p_u``, the MAP estimate under Gaussian priors on ``p_u, q_i``: the L2-penalised squared
    error, fitted by the same SGD as :class:`~mmbench.models.rating.svd.SVD` without biases (Surprise's
    ``SVD(biased=False)``). An unknown user or item: the global mean."""

    def __init__(
        self,
        n_factors: int = 100,
        n_epochs: int = 20,
        init_mean: float = 0.0,
        init_std_dev: float = 0.1,
        lr_all: float = 0.005,
        reg_all: float = 0.02,
        seed: int = 0,
    ) -> None:
        super().__init__(n_factors, n_epochs, False, init_mean, init_std_dev, lr_all, reg_all, seed=seed)
