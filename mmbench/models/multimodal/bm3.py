"""BM3 (Zhou et al., WWW 2023, "Bootstrap Latent Representations for Multi-modal Recommendation"): no negative
sampling; a shared predictor aligns each online view with a dropout-perturbed, gradient-free target view."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.graph import normalized_adjacency, sparse_mm
from mmbench.data.interactions import Interactions
from mmbench.data.sampling import RatingSampler
from mmbench.data.tensors import take
from mmbench.models.multimodal.base import MultimodalRecommender


def _align(online: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - mean cos(online, target)`` over the rows (weighted mean with 0/1 ``weight``: rows of items that have
    the modality); the target carries no gradient."""
    cos = F.cosine_similarity(online, target.detach(), dim=-1)
    if weight is None:
        return 1 - cos.mean()
    n = weight.sum()
    return (1 - cos) @ weight / n if n > 0 else cos.new_zeros(())


class BM3(MultimodalRecommender):
    """Online embeddings: LightGCN over the training graph (``D^-1/2 A D^-1/2``, mean of ``n_layers + 1`` layers)
    with the item's id embedding added once more (``h_i = ē_i + e_i``, as MMRec's code); modality ``m``'s item view
    is a linear projection ``W_m f_i`` of its feature table. Targets are the online views, detached, with dropout
    ``dropout`` (the paper's latent perturbation). Each training event ``(u, i)`` (no negatives) gives, with the
    shared ``predictor`` ``p``::

        L = [1 - cos(p(h_u), t_i)] + [1 - cos(p(h_i), t_u)]
            + cl_weight · Σ_m ([1 - cos(p(W_m f_i), t_i)] + [1 - cos(p(W_m f_i), t(W_m f_i))])
            + reg_weight · (‖H_U‖_F + ‖H_I‖_F) / n_items

    each bracket averaged over the batch (a modality's terms over the batch items that have it; MMRec has no
    missing features). The last term is MMRec's ``EmbLoss`` of the full online tables (Frobenius norms, not
    squared, divided by the row count of the last table, the items). Scores ``p(h_u) · p(h_i)``.

    From the paper: LightGCN encoder, dropout on the online embeddings as the latent perturbation that makes the
    target view, one shared predictor, stop-gradient targets, no negative sampling, the user-item reconstruction
    terms both ways, the feature-to-item (inter-modality) and feature-to-perturbed-feature (intra-modality)
    alignment terms. From MMRec's code (``src/models/bm3.py``, ``BM3.yaml``, ``overall.yaml``) where the paper
    leaves it open: the ``+ e_i`` residual, the ``reg_weight`` term's form, Xavier-uniform embeddings and
    Xavier-normal predictor / projection weights, feature tables trained with the model (``train_features``;
    ``from_pretrained(freeze=False)``), the same dropout mask for an item repeated in a batch (dropout drawn per
    table row), ``cl_weight`` 2, Adam lr 0.001; ``n_layers``, ``dropout`` and ``reg_weight`` default to the first
    value of MMRec's grids ({1, 2}, {0.3, 0.5}, {0.1, 0.01}).
    """

    min_modalities = 1

    def __init__(
        self,
        embedding_dim: int = 64,
        modalities: Sequence[str] | None = None,
        n_layers: int = 1,
        dropout: float = 0.3,
        reg_weight: float = 0.1,
        cl_weight: float = 2.0,
        train_features: bool = True,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__(modalities)
        if not 0 <= dropout < 1:
            raise ValueError(f"model.dropout={dropout} must be in [0, 1)")
        if n_layers < 0 or embedding_dim < 1:
            raise ValueError(f"model: need n_layers>=0 and embedding_dim>=1, got {n_layers}, {embedding_dim}")
        self.embedding_dim, self.n_layers, self.dropout = embedding_dim, n_layers, dropout
        self.reg_weight, self.cl_weight, self.train_features = reg_weight, cl_weight, train_features
        self.optimizer = optimizer
        self._cache: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def build(self, train: Interactions) -> None:
        self.build_id_embeddings(train)
        d = self.embedding_dim
        self.predictor = nn.Linear(d, d)
        nn.init.xavier_normal_(self.predictor.weight)
        self.tables = nn.ParameterDict()
        self.proj = nn.ModuleDict()
        for m, f in self.features.items():
            x = torch.as_tensor(f.require_frozen("BM3"), dtype=torch.float32)
            self.tables[m] = nn.Parameter(x.clone(), requires_grad=self.train_features)
            self.register_buffer(f"mask_{m}", torch.as_tensor(f.mask, dtype=torch.float32), persistent=False)
            self.proj[m] = nn.Linear(x.shape[1], d)
            nn.init.xavier_normal_(self.proj[m].weight)
        self.register_buffer("adjacency", normalized_adjacency(train), persistent=False)
        self._cache = None

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> RatingSampler:
        """Every training event once per epoch, shuffled (the ratings in the batches are not read)."""
        return RatingSampler(train, batch_size, seed)

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Online user and item embeddings ``[n_users, d]``, ``[n_items, d]``."""
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])
        total = ego
        for _ in range(self.n_layers):
            ego = sparse_mm(self.adjacency, ego)
            total = total + ego
        out = total / (self.n_layers + 1)
        return out[: self.n_users], out[self.n_users :] + self.item_emb.weight

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        users, items = batch[0], batch[1]
        hu, hi = self.propagate()
        with torch.no_grad():
            tu, ti = F.dropout(hu, self.dropout), F.dropout(hi, self.dropout)
        p = self.predictor
        ti_b = take(ti, items)  # the batch's item targets, read again by the feature terms below
        loss = _align(p(take(hu, users)), ti_b) + _align(p(take(hi, items)), take(tu, users))
        loss = loss + self.reg_weight * (hu.norm() + hi.norm()) / self.n_items
        if self.cl_weight and len(self.proj):
            uniq, inverse = torch.unique(items, return_inverse=True)
            for m, proj in self.proj.items():
                f = proj(take(self.tables[m], uniq))
                with torch.no_grad():
                    tf = F.dropout(f, self.dropout)
                fo, w = take(p(f), inverse), take(getattr(self, f"mask_{m}"), items)
                loss = loss + self.cl_weight * (_align(fo, ti_b, w) + _align(fo, take(tf, inverse), w))
        return loss

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``p(h_u)``, ``p(h_i)`` for scoring, recomputed only when a parameter has changed."""
        key = tuple((q._version, q.data_ptr()) for q in self.parameters())
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                hu, hi = self.propagate()
                self._cache = (key, self.predictor(hu), self.predictor(hi))
        return self._cache[1], self._cache[2]

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        pu, pi = self.final_embeddings()
        return take(pu, users) @ (pi if items is None else take(pi, items)).T
