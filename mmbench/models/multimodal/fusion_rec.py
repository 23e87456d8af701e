"""FusionRec: a user embedding against an item tower of any encoders and any fusion."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.data.sampling import PairwiseSampler
from mmbench.data.tensors import take
from mmbench.encoders.base import ModalityFeatures, TokenModule
from mmbench.fusion.base import Fusion
from mmbench.models.base import Capabilities, Embedding
from mmbench.models.multimodal.base import MultimodalRecommender


class FusionRec(MultimodalRecommender):
    """``score(u, i) = p_u · fusion(q_i, proj_m(enc_m(x_i^m)) for each modality m)``.

    Each modality's features (frozen table or trainable encoder) go through LayerNorm + Linear to
    ``embedding_dim``; the fusion combines them with the item id embedding ``q_i``. Loss ``bpr``
    (pairwise, one sampled negative per event) or ``bce`` (the event is a positive, the sampled item a
    negative), plus ``reg`` times the squared norms of the batch's user and id vectors. With no
    modality the fusion is skipped and the model is BPR-MF (same parameters and initialisation as
    :class:`~mmbench.models.neural.bpr.BPR`).

    User features (the run's ``user_encoders``, frozen): ``p_u = e_u + W [x_u^1; x_u^2; ...] + b``, a learned
    projection of the concatenated user features, for users that have any (a modality a user lacks is a zero
    block; a user with none keeps ``e_u`` alone). ``user_id_embedding=false`` drops ``e_u``: users are then
    their features only, so users never seen in training are scored too (a user without any features scores
    every item 0). Without user features the model is unchanged (same parameters, initialisation and results).

    Explanations (``explain_sources``): ``id`` (the item id embedding ``q_i``), each modality (its projected vector
    ``proj_m(enc_m(x_i^m))``, the fusion's input) and ``user_features`` (the projected user features in ``p_u``);
    additive (an exact split) under late and graph fusion without user features.
    """

    capabilities = Capabilities(item_features=True, user_features=True, neural=True, explains=True, user_level_dp=True)

    def __init__(
        self,
        embedding_dim: int = 64,
        fusion: Fusion | None = None,
        modalities: Sequence[str] | None = None,
        loss: str = "bpr",
        reg: float = 1e-5,
        init_std: float = 0.1,
        user_id_embedding: bool = True,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    ) -> None:
        super().__init__(modalities)
        if loss not in ("bpr", "bce"):
            raise ValueError(f"model.loss={loss!r}: choose bpr or bce")
        self.embedding_dim, self.loss_name, self.reg, self.init_std = embedding_dim, loss, reg, init_std
        self.user_id_embedding = user_id_embedding
        self.fusion = fusion
        self.optimizer = optimizer

    def set_user_features(self, features: dict[str, ModalityFeatures]) -> None:
        super().set_user_features(features)
        self.check_user_features()

    def check_user_features(self) -> None:
        if not self.user_id_embedding and not self.user_features:
            raise ValueError(
                "FusionRec: model.user_id_embedding=false needs user features; configure user_encoders "
                "(e.g. +encoder@user_encoders.demographics=demographics)"
            )

    def for_release(self) -> FusionRec:
        """Without user features: a copy (sharing every other module and buffer) whose user id embedding holds each
        user's final vector ``p_u`` and which has no ``user_proj``, ``user_x`` (the encoded user table, e.g.
        demographics) or ``user_features``; it scores the known users as this model does."""
        if not self.user_features:
            return self
        with torch.no_grad():
            p = self.user_vectors(torch.arange(len(self.user_x), device=self.user_x.device)).detach().clone()
        out = object.__new__(type(self))
        out.__dict__ = dict(self.__dict__)
        out._modules = {k: v for k, v in self._modules.items() if k not in ("user_proj", "user_emb")}
        out._buffers = {k: v for k, v in self._buffers.items() if k not in ("user_x", "user_has")}
        out._non_persistent_buffers_set = self._non_persistent_buffers_set - {"user_x", "user_has"}
        out.user_features, out.user_id_embedding = {}, True
        out.user_emb = nn.Embedding.from_pretrained(p, freeze=True)
        return out

    def user_level_dp_blocker(self) -> str | None:
        """The graph fusion's item-item graph counts co-occurrences across users' training events."""
        if self.features and getattr(self.fusion, "interaction_weight", 0) > 0:
            return (
                f"fusion {type(self.fusion).__name__} builds an item graph from every user's training events "
                "(interaction_weight > 0); set fusion.interaction_weight=0 or pick another fusion"
            )
        return None

    def build(self, train: Interactions) -> None:
        self.check_features()
        self.check_user_features()
        mods = list(self.features)
        d = self.embedding_dim
        user_dim = d
        if mods:
            if self.fusion is None:
                raise ValueError("FusionRec: modalities are configured but model.fusion is null; pick conf/fusion")
            self.fusion.setup(["id", *mods], d, train, self.features)
            user_dim = self.fusion.user_dim
        if self.user_id_embedding:
            self.user_emb = Embedding(train.n_users, user_dim)
        self.item_emb = Embedding(train.n_items, d)
        if self.user_id_embedding:
            nn.init.normal_(self.user_emb.weight, std=self.init_std)
        nn.init.normal_(self.item_emb.weight, std=self.init_std)
        self.encoders = nn.ModuleDict({m: f.module() for m, f in self.features.items()})
        self.proj = nn.ModuleDict(
            {m: nn.Sequential(nn.LayerNorm(enc.out_dim), nn.Linear(enc.out_dim, d)) for m, enc in self.encoders.items()}
        )
        for m, f in self.features.items():
            self.register_buffer(f"mask_{m}", torch.as_tensor(f.mask, dtype=torch.bool), persistent=False)
        if self.user_features:  # created last: without user features nothing above changes
            self.build_user_projection(train.n_users, user_dim)

    def build_user_projection(self, n_users: int, user_dim: int) -> None:
        """``user_x`` (the concatenated user features, zero blocks where masked), ``user_has`` (users with any)
        and the projection ``user_proj``."""
        blocks = []
        for m, f in self.user_features.items():
            x = f.require_frozen("FusionRec (user features)")
            if len(x) != n_users:
                raise ValueError(f"FusionRec: user features {m!r} have {len(x)} rows for {n_users} users")
            blocks.append(np.where(f.mask[:, None], x, 0))
        has = np.any([f.mask for f in self.user_features.values()], axis=0)
        x = torch.as_tensor(np.concatenate(blocks, axis=1), dtype=torch.float32)
        self.register_buffer("user_x", x, persistent=False)
        self.register_buffer("user_has", torch.as_tensor(has, dtype=torch.bool), persistent=False)
        self.user_proj = nn.Linear(x.shape[1], user_dim)

    def user_parameters(self) -> list[nn.Parameter]:
        """The user id embedding (``user_proj`` over user features is shared by all users)."""
        return [self.user_emb.weight] if self.user_id_embedding else []

    def train_data(self, train: Interactions, batch_size: int, seed: int) -> PairwiseSampler:
        return PairwiseSampler(train, batch_size, seed)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Item tower output for ``items`` (all items when None)."""
        if not self.encoders:
            return self.item_emb.weight if items is None else self.item_emb(items)
        if items is not None and not self.fusion.needs_all_items and len(items) > 1:
            # a training batch repeats items: encode each distinct item once (a 2048-event batch of
            # ML-100K holds ~4096 positives and negatives but at most 1,682 distinct items)
            uniq, inverse = torch.unique(items, return_inverse=True)
            if len(uniq) < len(items):
                return take(self.item_vectors(uniq), inverse)
        all_items = items is None or self.fusion.needs_all_items
        h, mask = self.source_vectors(None if all_items else items)
        idx = torch.arange(self.item_emb.num_embeddings, device=self.device) if all_items else items
        out = self.fusion(h, mask, idx)
        return out if items is None or not all_items else take(out, items)

    def source_vectors(self, idx: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The fusion's inputs for items ``idx`` (None: every item, in id order, without copying the feature
        tables): per source its ``(b, d)`` vectors and ``(b,)`` availability."""
        every = torch.arange(self.item_emb.num_embeddings, device=self.device) if idx is None else idx
        h = {"id": self.item_emb(every)}
        mask = {"id": torch.ones(len(every), dtype=torch.bool, device=every.device)}
        for m, enc in self.encoders.items():
            h[m] = self.proj[m](enc(idx))
            mask[m] = getattr(self, f"mask_{m}") if idx is None else take(getattr(self, f"mask_{m}"), idx)
        return h, mask

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """``p_u``: the id embedding plus the projected user features (each where there is one)."""
        if not self.user_features:
            return self.user_emb(users)
        p = self.user_proj(take(self.user_x, users)) * take(self.user_has, users)[:, None]
        return self.user_emb(users) + p if self.user_id_embedding else p

    def explain_sources(self) -> list[str]:
        return ["id", *self.encoders, *(["user_features"] if self.user_features else [])]

    @property
    def additive(self) -> bool:
        """``p_u · fusion(...)`` is linear in each item source when the fusion is; a gated user part makes it
        bilinear."""
        return not self.user_features and (not self.encoders or self.fusion.additive)

    def gated_score(self, users: torch.Tensor, items: torch.Tensor, gates: torch.Tensor) -> torch.Tensor:
        """Scores of the pairs ``(users[k], items[k])`` with each source scaled by ``gates[k]`` (columns in
        ``explain_sources`` order); the user id embedding is not gated."""
        n_item = 1 + len(self.encoders)
        if not self.encoders:
            q = self.item_emb(items) * gates[:, :1]
        elif self.fusion.needs_all_items:
            h, mask = self.source_vectors(None)
            q = self.fusion.gated(h, mask, items, gates[:, :n_item])
        else:
            h, mask = self.source_vectors(items)
            q = self.fusion.gated(h, mask, torch.arange(len(items), device=items.device), gates[:, :n_item])
        if not self.user_features:
            pu = self.user_emb(users)
        else:
            pu = gates[:, n_item:] * self.user_proj(take(self.user_x, users)) * take(self.user_has, users)[:, None]
            pu = self.user_emb(users) + pu if self.user_id_embedding else pu
        return (pu * q).sum(-1)

    def explain_weights(self, users: torch.Tensor, items: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.encoders:
            return {}
        return self.fusion.item_weights(*self.source_vectors(items))

    def token_modules(self) -> dict[str, TokenModule]:
        """Modalities whose trainable encoder reads tokens (the seed LSTM): their words get attributions."""
        return {m: enc for m, enc in self.encoders.items() if isinstance(enc, TokenModule)}

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, j = batch
        pu = self.user_vectors(u)
        q = self.item_vectors(torch.cat([i, j]))
        qi, qj = q[: len(i)], q[len(i) :]
        si, sj = (pu * qi).sum(-1), (pu * qj).sum(-1)
        if self.loss_name == "bpr":
            main = -F.logsigmoid(si - sj)
        else:
            main = F.binary_cross_entropy_with_logits(si, torch.ones_like(si), reduction="none")
            main = main + F.binary_cross_entropy_with_logits(sj, torch.zeros_like(sj), reduction="none")
        reg = (pu.pow(2).sum(-1) + self.item_emb(i).pow(2).sum(-1) + self.item_emb(j).pow(2).sum(-1)) / 2
        return (main + self.reg * reg).mean()

    def score(self, users: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        return self.user_vectors(users) @ self.item_vectors(items).T

    def diagnostics(self) -> dict[str, float]:
        if self.fusion is None or not self.encoders:
            return {}
        with torch.no_grad():
            self.item_vectors()  # fusions keep their weights over the whole catalogue
        return self.fusion.diagnostics()
