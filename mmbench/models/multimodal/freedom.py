"""FREEDOM (Zhou & Shen, ACM MM 2023): a frozen modality kNN item graph plus a user-item graph with
degree-sensitive edge pruning (LightGCN propagation)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.graph import bipartite_graph, modality_graph, sparse_mm, sym_normalise, to_torch
from mmbench.data.interactions import Interactions
from mmbench.data.sampling import PairwiseSampler
from mmbench.data.tensors import take
from mmbench.models.base import Capabilities
from mmbench.models.multimodal.base import MultimodalRecommender


def bpr(u: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    return -F.logsigmoid((u * pos).sum(-1) - (u * neg).sum(-1)).mean()


class _EpochHook(PairwiseSampler):
    """Pairwise batches that call ``hook(epoch)`` before each epoch (FREEDOM re-prunes the graph)."""

    def __init__(self, train: Interactions, batch_size: int, seed: int, hook: Callable[[int], None]) -> None:
        super().__init__(train, batch_size, seed)
        self.hook = hook

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        self.hook(self.epoch)
        return super().__iter__()


class FREEDOM(MultimodalRecommender):
    """Item-item graph ``S = Σ_m w_m norm(kNN_k(features_m))`` (frozen, built once); items propagate their
    id embeddings ``n_mm_layers`` times over it. The user-item graph is LightGCN's (``n_ui_layers``, mean of
    layers); each epoch keeps ``1 - dropout`` of its edges, sampled with probability ∝ ``1/sqrt(d_u d_i)``
    (degree-sensitive pruning), and re-normalises; evaluation uses the full graph. Score ``u_g · (i_g + h_i)``.
    Loss: BPR on those plus ``reg_weight`` times a BPR loss of the user vectors against each modality's
    projected features (as in the authors' code).

    With no modality (``modalities=[]``) there is no item-item graph and no feature loss: ``h_i = 0``, leaving
    the user-item part alone (LightGCN with degree-sensitive pruning), the ablation of the modality graph.

    Explanations: ``id`` is the user-item term ``u_g · i_g``, modality ``m`` its graph ``w_m norm(kNN_m)`` in ``S``
    (removing a modality removes its graph, not its features: the graph is what FREEDOM reads); additive with one
    item-item layer, where ``u_g · h_i = Σ_m w_m u_g · (norm(kNN_m) q)_i``."""

    capabilities = Capabilities(item_features=True, neural=True, explains=True)

    def __init__(
        self,
        embedding_dim: int = 64,
        modalities: Sequence[str] | None = None,
        k: int = 10,
        n_ui_layers: int = 2,
        n_mm_layers: int = 1,
        dropout: float = 0.8,
        modality_weights: Sequence[float] | None = None,
        reg_weight: float = 1e-4,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(modalities)
        if not 0 <= dropout < 1:
            raise ValueError(f"model.dropout={dropout}: the share of edges pruned must be in [0, 1)")
        self.embedding_dim, self.k, self.n_ui_layers, self.n_mm_layers = embedding_dim, k, n_ui_layers, n_mm_layers
        self.dropout, self.reg_weight, self.optimizer, self.seed = dropout, reg_weight, optimizer, seed
        self.modality_weights = None if modality_weights is None else list(modality_weights)

    def build(self, train: Interactions) -> None:
        self.build_id_embeddings(train)
        d = self.embedding_dim
        frozen = {m: (f.require_frozen("FREEDOM"), f.mask) for m, f in self.features.items()}
        mm, self.mm_weights = modality_graph(frozen, self.k, self.modality_weights, "FREEDOM")
        self.mm_parts: list[torch.Tensor] | None = None  # per-modality graphs, built when explanations ask
        # None without modalities: no item-item graph
        self.register_buffer("mm_adj", None if mm is None else to_torch(mm), persistent=False)
        self.proj = nn.ModuleDict()
        for m, f in self.features.items():
            x = torch.as_tensor(f.require_frozen("FREEDOM"), dtype=torch.float32)
            self.register_buffer(f"feat_{m}", x, persistent=False)
            self.register_buffer(f"mask_{m}", torch.as_tensor(f.mask, dtype=torch.bool), persistent=False)
            self.proj[m] = nn.Linear(x.shape[1], d)
        csr = train.to_csr()
        csr.data[:] = 1
        coo = csr.tocoo()
        self.edges_u, self.edges_i = coo.row.astype(np.int64), coo.col.astype(np.int64)
        du = np.asarray(csr.sum(1)).ravel()
        di = np.asarray(csr.sum(0)).ravel()
        self.edge_p = 1 / np.sqrt(du[self.edges_u] * di[self.edges_i])
        self.register_buffer("full_adj", self._adj(np.arange(len(self.edges_u))), persistent=False)
        self.train_adj = self.full_adj

    def _adj(self, keep: np.ndarray) -> torch.Tensor:
        """Symmetrically normalised ``(U+I) x (U+I)`` adjacency of the kept user-item edges."""
        g = bipartite_graph(self.edges_u[keep], self.edges_i[keep], self.n_users, self.n_items)
        return to_torch(sym_normalise(g))

    def prune(self, epoch: int) -> None:
        """Degree-sensitive edge pruning for this epoch (seeded by ``(seed, epoch)``)."""
        if self.dropout == 0:
            self.train_adj = self.full_adj
            return
        n_keep = max(1, int(len(self.edges_u) * (1 - self.dropout)))
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        keep = torch.multinomial(torch.as_tensor(self.edge_p), n_keep, replacement=False, generator=g).numpy()
        self.train_adj = self._adj(keep).to(self.full_adj.device)

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> PairwiseSampler:
        return _EpochHook(train, batch_size, seed, self.prune)

    def propagate(self, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.item_emb.weight
        if self.mm_adj is None:
            h = torch.zeros_like(h)
        else:
            for _ in range(self.n_mm_layers):
                h = sparse_mm(self.mm_adj, h)
        u, i = self.propagate_ui(adj)
        return u, i + h

    def propagate_ui(self, adj: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The user-item part: LightGCN's mean of layers over ``adj``, user and item rows."""
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])
        layers = [ego]
        for _ in range(self.n_ui_layers):
            ego = sparse_mm(adj, ego)
            layers.append(ego)
        out = torch.stack(layers).mean(0)
        return out[: self.n_users], out[self.n_users :]

    def explain_sources(self) -> list[str]:
        return ["id", *self.features]

    @property
    def additive(self) -> bool:
        return self.mm_adj is None or self.n_mm_layers <= 1

    def modality_parts(self) -> list[torch.Tensor]:
        """``w_m norm(kNN_m)`` per modality (they sum to ``mm_adj``), rebuilt from the frozen features once."""
        if self.mm_parts is None:
            parts = []
            for m in self.features:
                x, mask = getattr(self, f"feat_{m}").cpu().numpy(), getattr(self, f"mask_{m}").cpu().numpy()
                graph, _ = modality_graph({m: (x, mask)}, self.k, None, "FREEDOM")
                parts.append(to_torch(graph * self.mm_weights[m]).to(self.item_emb.weight.device))
            self.mm_parts = parts
        return self.mm_parts

    def gated_score(self, users: torch.Tensor, items: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Pair scores with the user-item term times ``gates[:, 0]`` and modality ``m``'s graph times its gate:
        ``(Σ_m g_m S_m)^L q`` expanded over the ``M^L`` products of graphs, each weighted by its gates' product."""
        ug, ig = self.propagate_ui(self.full_adj)
        u = take(ug, users)
        out = gates[:, 0] * (u * take(ig, items)).sum(-1)
        if self.mm_adj is None:
            return out
        terms: list[tuple[tuple[int, ...], torch.Tensor]] = [((), self.item_emb.weight)]
        for _ in range(self.n_mm_layers):
            terms = [((k, *seq), sparse_mm(a, h)) for k, a in enumerate(self.modality_parts(), 1) for seq, h in terms]
        for seq, h in terms:
            g = torch.ones_like(out)
            for k in seq:
                g = g * gates[:, k]
            out = out + g * (u * take(h, items)).sum(-1)
        return out

    def explain_weights(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, j = batch
        ug, ig = self.propagate(self.train_adj.to(self.user_emb.weight.device))
        loss = bpr(take(ug, u), take(ig, i), take(ig, j))
        if self.reg_weight:
            uniq, inverse = torch.unique(torch.cat([i, j]), return_inverse=True)
            fi, fj = inverse[: len(i)], inverse[len(i) :]
            for m, proj in self.proj.items():
                f = proj(take(getattr(self, f"feat_{m}"), uniq)) * take(getattr(self, f"mask_{m}"), uniq)[:, None]
                loss = loss + self.reg_weight * bpr(take(ug, u), take(f, fi), take(f, fj))
        return loss

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        ug, ig = self.propagate(self.full_adj)
        return take(ug, users) @ (ig if items is None else take(ig, items)).T
