"""LATTICE (Zhang et al., ACM MM 2021, "Mining Latent Structures for Multimedia Recommendation"): an item-item graph
learned from projected modality features, mixed with the kNN graph of the raw features, smooths the item id
embeddings, which are added to LightGCN's over the user-item graph."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.graph import bipartite_graph, sparse_mm, sym_normalise, to_torch
from mmbench.data.interactions import Interactions
from mmbench.data.sampling import PairwiseSampler
from mmbench.data.tensors import take
from mmbench.models.multimodal.base import MultimodalRecommender

Edges = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # rows, cols, weights of a sparse (n x n) matrix


def knn_edges(x: torch.Tensor, available: torch.Tensor, k: int, chunk: int = 1024) -> Edges:
    """Each available row's ``k`` most cosine-similar available rows, **itself included** (similarity 1), weighted
    by the similarity (the paper's eq. 3-4; MMRec's ``build_sim`` + ``build_knn_neighbourhood``). Not symmetric.
    Similarities are computed ``chunk`` rows at a time (no dense ``n x n`` matrix is kept, in forward or backward);
    the weights are differentiable in ``x``. Unavailable rows get no edges."""
    idx = torch.nonzero(available, as_tuple=True)[0]
    k = min(k, len(idx))
    if k < 1:
        empty = x.new_zeros(0, dtype=torch.long)
        return empty, empty, x.new_zeros(0)
    z = F.normalize(x[idx], dim=1)
    top = [torch.topk(z[s : s + chunk] @ z.T, k, dim=1) for s in range(0, len(idx), chunk)]
    rows = torch.arange(len(idx), device=x.device).repeat_interleave(k)
    cols = torch.cat([t.indices for t in top]).reshape(-1)
    return idx[rows], idx[cols], torch.cat([t.values for t in top]).reshape(-1)


def normalise_edges(rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, n: int) -> torch.Tensor:
    """The weights of ``D^-1/2 S D^-1/2`` with ``D`` the row sums of ``S`` (the paper's eq. 5, MMRec's
    ``compute_normalized_laplacian``); rows that sum to zero or less stay zero. Repeated edges add up."""
    d = vals.new_zeros(n).index_add(0, rows, vals)
    inv = torch.where(d > 0, d.clamp_min(1e-12).rsqrt(), torch.zeros_like(d))
    return vals * inv[rows] * inv[cols]


def edge_mm(edges: Edges, x: torch.Tensor) -> torch.Tensor:
    """``S @ x`` for ``S`` given by its edges (repeated edges add up), differentiable in the weights and ``x``."""
    rows, cols, vals = edges
    return torch.zeros_like(x).index_add(0, rows, vals[:, None] * x[cols])


class _DirectedSparseMM(torch.autograd.Function):
    """``a @ x`` for a fixed, non-symmetric sparse ``a``, backward ``aᵀ @ grad`` with ``aᵀ`` built once (torch's own
    backward would transpose ``a`` on every call)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.a_t = a_t
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        return None, None, torch.sparse.mm(ctx.a_t, grad)


class FixedOperator:
    """``x -> S @ x`` for edges that carry no gradient: ``S`` and ``Sᵀ`` as float32 CSR tensors, duplicates summed
    (faster than :func:`edge_mm` for the many batches that reuse one graph). A class, not a closure, so that a model
    holding one pickles (the logged model of a run)."""

    def __init__(self, edges: Edges, n: int) -> None:
        rows, cols, vals = (t.detach() for t in edges)
        a = torch.sparse_coo_tensor(torch.stack([rows, cols]), vals.float(), (n, n)).coalesce()
        self.a_t = a.t().coalesce().to_sparse_csr()
        self.a = a.to_sparse_csr()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):  # sparse products have no reduced-precision kernels
            return _DirectedSparseMM.apply(self.a, self.a_t, x.float())


class LATTICE(MultimodalRecommender):
    """Per modality ``m``: ``S̃_m`` = kNN graph (``k``, self included, cosine weights) of the raw features,
    ``D^-1/2 S D^-1/2``-normalised, fixed; ``Ŝ_m`` = kNN graph of the projected features ``W_m f_i`` (trainable
    projections). With ``α = softmax(modal_weight)``, the item graph is ::

        A = (1 - lambda_coeff) · norm(Σ_m α_m Ŝ_m) + lambda_coeff · Σ_m α_m norm(S̃_m)

    Item id embeddings are propagated ``n_layers`` times over ``A`` (``h = A^L e``); the collaborative part is
    LightGCN over the user-item graph, mean of ``n_ui_layers + 1`` layers; item vector ``ē_i + h_i / ‖h_i‖``, score
    ``ē_u · (ē_i + h_i / ‖h_i‖)``. Loss: BPR with one sampled negative plus ``reg_weight · (‖ē_u‖² + ‖ē_i‖² +
    ‖ē_j‖²) / 2`` averaged over the batch.

    From the paper: the cosine kNN sparsification with similarity weights, the degree normalisation, the
    ``lambda_coeff`` skip connection to the raw-feature graphs, softmax modality weights, the item-graph convolution
    added to a CF backbone's item embeddings. From MMRec's code (``src/models/lattice.py``, ``LATTICE.yaml``) where
    the paper leaves it open: the learned graphs are mixed, then the mix is normalised, while the raw-feature graphs
    are normalised per modality, then mixed; the user-item graph is ``D^-1 (R + I)`` (row-normalised, self loops,
    unlike LightGCN's ``D^-1/2 R D^-1/2``; computed exactly as ``D^-1/2 · S^l · D^1/2`` with the symmetric
    ``S = D^-1/2 (R + I) D^-1/2``, so only symmetric sparse products are used); the learned graph is rebuilt, with
    gradient to ``W_m``, the feature tables and ``modal_weight``, at the first batch of every epoch and reused
    detached for the epoch's other batches, and rebuilt from the current parameters for scoring (cached here until
    they change); feature tables trained with the model (``train_features``; ``from_pretrained(freeze=False)``),
    the fixed graphs from the initial features; ``h`` L2-normalised; defaults ``k`` 10, ``lambda_coeff`` 0.9,
    1 item-graph layer, LightGCN with ``weight_size`` [64, 64] (2 layers), 64-dim projections, Adam lr 0.001
    (``overall.yaml``); ``reg_weight`` 1e-4 is a value of MMRec's grid {0, 1e-5, 1e-4, 1e-3}. Differences: the BPR
    regulariser is averaged over the actual batch (MMRec divides by the configured batch size: only an epoch's last
    batch differs); MMRec's learning-rate decay ``0.96^(epoch/50)`` is not applied (``scheduler`` group); its NGCF
    and MF backbones are not implemented; items without a modality (mask) get no edges in its graphs (MMRec has
    no missing features).
    """

    min_modalities = 1

    def __init__(
        self,
        embedding_dim: int = 64,
        feat_embed_dim: int = 64,
        modalities: Sequence[str] | None = None,
        k: int = 10,
        lambda_coeff: float = 0.9,
        n_layers: int = 1,
        n_ui_layers: int = 2,
        reg_weight: float = 1e-4,
        train_features: bool = True,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__(modalities)
        if not 0 <= lambda_coeff <= 1:
            raise ValueError(f"model.lambda_coeff={lambda_coeff} must be in [0, 1]")
        if k < 1 or n_layers < 0 or n_ui_layers < 0:
            raise ValueError(f"model: need k>=1, n_layers>=0, n_ui_layers>=0; got {k}, {n_layers}, {n_ui_layers}")
        self.embedding_dim, self.feat_embed_dim, self.k, self.lambda_coeff = (
            embedding_dim,
            feat_embed_dim,
            k,
            lambda_coeff,
        )
        self.n_layers, self.n_ui_layers, self.reg_weight = n_layers, n_ui_layers, reg_weight
        self.train_features, self.optimizer = train_features, optimizer
        self.rebuild = True
        self._train_graph: FixedOperator | None = None
        self._cache: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def build(self, train: Interactions) -> None:
        self.build_id_embeddings(train)
        self.tables = nn.ParameterDict()
        self.proj = nn.ModuleDict()
        fixed: list[Edges] = []
        mods = []
        for n, (m, f) in enumerate(self.features.items()):
            x = torch.as_tensor(f.require_frozen("LATTICE"), dtype=torch.float32)
            mask = torch.as_tensor(f.mask, dtype=torch.bool)
            self.tables[m] = nn.Parameter(x.clone(), requires_grad=self.train_features)
            self.register_buffer(f"mask_{m}", mask, persistent=False)
            self.proj[m] = nn.Linear(x.shape[1], self.feat_embed_dim)
            r, c, v = knn_edges(x, mask, self.k)
            fixed.append((r, c, normalise_edges(r, c, v, self.n_items)))
            mods.append(torch.full_like(r, n))
        self.modal_weight = nn.Parameter(torch.full((len(self.features),), 0.5))
        self.register_buffer("fixed_rows", torch.cat([e[0] for e in fixed]), persistent=False)
        self.register_buffer("fixed_cols", torch.cat([e[1] for e in fixed]), persistent=False)
        self.register_buffer("fixed_vals", torch.cat([e[2] for e in fixed]), persistent=False)
        self.register_buffer("fixed_modality", torch.cat(mods), persistent=False)
        # D^-1 (R + I) = D^-1/2 S D^1/2 with S = D^-1/2 (R + I) D^-1/2 symmetric
        csr = train.to_csr().tocoo()
        g = bipartite_graph(csr.row, csr.col, self.n_users, self.n_items)
        g = (g + sp.eye(g.shape[0], dtype=np.float32)).tocsr()
        deg = torch.as_tensor(np.asarray(g.sum(1)).ravel(), dtype=torch.float32)
        self.register_buffer("ui_adj", to_torch(sym_normalise(g)), persistent=False)
        self.register_buffer("deg_sqrt", deg.sqrt()[:, None], persistent=False)
        self.rebuild, self._train_graph, self._cache = True, None, None

    def item_graph(self) -> Edges:
        """``A``'s edges from the current parameters (differentiable)."""
        alpha = torch.softmax(self.modal_weight, 0)
        learned = []
        for n, (m, proj) in enumerate(self.proj.items()):
            r, c, v = knn_edges(proj(self.tables[m]), getattr(self, f"mask_{m}"), self.k)
            learned.append((r, c, alpha[n] * v))
        r, c = torch.cat([e[0] for e in learned]), torch.cat([e[1] for e in learned])
        v = normalise_edges(r, c, torch.cat([e[2] for e in learned]), self.n_items)
        fixed = self.fixed_vals * alpha[self.fixed_modality]
        lam = self.lambda_coeff
        return torch.cat([r, self.fixed_rows]), torch.cat([c, self.fixed_cols]), torch.cat([(1 - lam) * v, lam * fixed])

    def propagate(self, graph: Edges | FixedOperator) -> tuple[torch.Tensor, torch.Tensor]:
        """User and item vectors ``[n_users, d]``, ``[n_items, d]`` for the item graph ``graph`` (its edges, or the
        product by it, a :class:`FixedOperator`)."""
        mm = graph if isinstance(graph, FixedOperator) else lambda x: edge_mm(graph, x)
        h = self.item_emb.weight
        for _ in range(self.n_layers):
            h = mm(h)
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])
        y, total = ego * self.deg_sqrt, ego
        for _ in range(self.n_ui_layers):
            y = sparse_mm(self.ui_adj, y)
            total = total + y / self.deg_sqrt
        out = total / (self.n_ui_layers + 1)
        return out[: self.n_users], out[self.n_users :] + F.normalize(h, dim=1)

    def start_epoch(self, epoch: int) -> None:
        """Rebuild the learned graph at the epoch's first batch (MMRec's ``pre_epoch_processing``)."""
        self.rebuild = True

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> PairwiseSampler:
        return PairwiseSampler(train, batch_size, seed, on_epoch=self.start_epoch)

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, j = batch
        if self.rebuild or self._train_graph is None:
            graph = self.item_graph()
            self._train_graph = FixedOperator(graph, self.n_items)
            self.rebuild = False
        else:
            graph = self._train_graph
        eu, ei = self.propagate(graph)
        pu, pi, pj = take(eu, u), take(ei, i), take(ei, j)
        x = (pu * (pi - pj)).sum(-1)
        reg = (pu.pow(2).sum(-1) + pi.pow(2).sum(-1) + pj.pow(2).sum(-1)) / 2
        return (-F.logsigmoid(x) + self.reg_weight * reg).mean()

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """User and item vectors for scoring (the learned graph rebuilt), recomputed only when a parameter changed."""
        key = tuple((q._version, q.data_ptr()) for q in self.parameters())
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                eu, ei = self.propagate(FixedOperator(self.item_graph(), self.n_items))
            self._cache = (key, eu, ei)
        return self._cache[1], self._cache[2]

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        eu, ei = self.final_embeddings()
        return take(eu, users) @ (ei if items is None else take(ei, items)).T
