"""Explanations of test recommendations: how much of each score each source (the id embedding, each item modality,
the user features) contributed, whether that is faithful, and which of the user's own items back it up.

A model that declares ``Capabilities(explains=True)`` scores ``(user, item)`` pairs with a gate per source
(``gated_score``; gates 1: the score, gate 0: the source's input zeroed). The contributions are

* exact where the model is affine in the gates (``additive``: late and graph fusion, VBPR, FREEDOM with one
  item-item layer): the gradient at gates 1, i.e. each source's own term;
* Integrated Gradients (Captum, Gauss-Legendre, baseline: every gate 0, i.e. every source's input zeroed) elsewhere.
  Summed over a source's input, IG of the input vector equals IG of its gate, so the gates are the inputs.

Either way ``baseline + Σ_s contribution_s = score`` (the ``baseline`` column is the score with every source zeroed,
non-zero e.g. for early fusion's MLP biases); the ``completeness_gap`` column is what is left over (IG's numerical
error). The deletion test zeroes one source at a time: faithful attributions change the score more when the
top-attributed source is removed than when a random one is (the expectation over a uniformly random source).
For frozen features, nearest-neighbour evidence: the user's training items closest to the recommended item in
each modality's feature space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from mmbench.data.interactions import Interactions
from mmbench.encoders.base import TokenModule
from mmbench.evaluation.evaluator import EvalResult, scoring
from mmbench.models.base import Recommender

COLUMNS = ("user", "rank", "item", "score", "method", "baseline")  # then contribution_<source>, ...
EVIDENCE_COLUMNS = ("user", "rank", "item", "modality", "evidence_rank", "train_item", "similarity")
TOKEN_COLUMNS = ("user", "rank", "item", "modality", "token_rank", "position", "word", "attribution")


@dataclass
class Attribution:
    """Per pair: ``contributions`` ``(n, S)`` in ``sources`` order, ``baseline`` (score with every source zeroed),
    ``full`` (score with every source, by the gated path), ``deletion`` ``(n, S)`` (full minus the score with that
    source zeroed), ``weights`` (the model's own per-source weights, if any) and the ``method``."""

    sources: list[str]
    contributions: np.ndarray
    baseline: np.ndarray
    full: np.ndarray
    deletion: np.ndarray
    weights: dict[str, np.ndarray]
    method: str


@dataclass
class Explanations:
    """``frame``: one row per explained recommendation (``explanations/<part>_topk.tsv``); ``evidence``: the
    nearest training items per recommendation and frozen modality (``explanations/<part>_evidence.tsv``);
    ``metrics``: ``explain/...`` numbers to log."""

    frame: pd.DataFrame
    evidence: pd.DataFrame
    metrics: dict[str, float]
    tokens: pd.DataFrame | None = None

    def save(self, folder: Path, part: str = "test") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.frame.to_csv(folder / f"{part}_topk.tsv", sep="\t", index=False, float_format="%.8g")
        self.evidence.to_csv(folder / f"{part}_evidence.tsv", sep="\t", index=False, float_format="%.6g")
        if self.tokens is not None:
            self.tokens.to_csv(folder / f"{part}_tokens.tsv", sep="\t", index=False, float_format="%.6g")


class Explainer:
    """Explains the first ``top_k`` test recommendations of ``n_users`` test users (drawn with ``seed``).

    ``n_steps``: Gauss-Legendre points of Integrated Gradients; ``n_evidence``: training items per recommendation
    and frozen modality in the evidence table; ``n_tokens``: words per recommendation and token encoder;
    ``batch_size``: pairs per attribution batch."""

    def __init__(
        self,
        top_k: int = 10,
        n_users: int = 100,
        n_steps: int = 64,
        n_evidence: int = 3,
        n_tokens: int = 5,
        seed: int = 0,
        batch_size: int = 256,
    ) -> None:
        for name, v in (("top_k", top_k), ("n_users", n_users), ("n_steps", n_steps), ("batch_size", batch_size)):
            if v < 1:
                raise ValueError(f"explain.{name}={v}: must be at least 1")
        for name, v in (("n_evidence", n_evidence), ("n_tokens", n_tokens)):
            if v < 0:
                raise ValueError(f"explain.{name}={v}: must be at least 0")
        self.top_k, self.n_users, self.n_steps, self.n_evidence = top_k, n_users, n_steps, n_evidence
        self.n_tokens = n_tokens
        self.seed, self.batch_size = seed, batch_size

    def sample(self, users: np.ndarray) -> np.ndarray:
        """Positions into ``users`` of the explained users: ``n_users`` of them drawn with ``seed``, in order."""
        n = min(self.n_users, len(users))
        return np.sort(np.random.default_rng(self.seed).choice(len(users), n, replace=False))

    def attribute(self, model: Recommender, users: torch.Tensor, items: torch.Tensor) -> Attribution:
        """Contributions, baseline, deletion effects and weights of the pairs ``(users[k], items[k])``."""
        parts = [
            self._attribute(model, users[a : a + self.batch_size], items[a : a + self.batch_size])
            for a in range(0, len(users), self.batch_size)
        ]
        first = parts[0]
        return Attribution(
            sources=first.sources,
            contributions=np.concatenate([p.contributions for p in parts]),
            baseline=np.concatenate([p.baseline for p in parts]),
            full=np.concatenate([p.full for p in parts]),
            deletion=np.concatenate([p.deletion for p in parts]),
            weights={s: np.concatenate([p.weights[s] for p in parts]) for s in first.weights},
            method=first.method,
        )

    def _attribute(self, model: Recommender, users: torch.Tensor, items: torch.Tensor) -> Attribution:
        sources = list(model.explain_sources())
        n, s = len(users), len(sources)
        ones = torch.ones(n, s, device=users.device)
        with scoring(model):  # eval mode, no grad: the deletion path, the weights
            full = model.gated_score(users, items, ones)
            baseline = model.gated_score(users, items, torch.zeros_like(ones))
            drop = (1 - torch.eye(s, device=ones.device)).repeat_interleave(n, 0)  # block k: source k zeroed
            dropped = model.gated_score(users.repeat(s), items.repeat(s), drop).view(s, n).T
            weights = {k: v.cpu().numpy() for k, v in model.explain_weights(users, items).items()}
        was_training = model.training
        model.eval()
        try:
            if model.additive:  # affine in the gates: the gradient is each source's own term
                g = ones.clone().requires_grad_(True)
                contributions = torch.autograd.grad(model.gated_score(users, items, g).sum(), g)[0]
                method = "exact"
            else:
                from captum.attr import IntegratedGradients  # imports matplotlib: only when attributing

                ig = IntegratedGradients(lambda g, u, i: model.gated_score(u, i, g))
                contributions = ig.attribute(
                    ones,
                    baselines=torch.zeros_like(ones),
                    additional_forward_args=(users, items),
                    n_steps=self.n_steps,
                    method="gausslegendre",
                )
                method = "integrated_gradients"
        finally:
            model.train(was_training)
        return Attribution(
            sources=sources,
            contributions=contributions.detach().cpu().numpy(),
            baseline=baseline.cpu().numpy(),
            full=full.cpu().numpy(),
            deletion=(full[:, None] - dropped).cpu().numpy(),
            weights=weights,
            method=method,
        )

    def token_attributions(
        self, model: Recommender, module: TokenModule, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[np.ndarray, np.ndarray]:
        """Integrated Gradients of each pair's score over the item's word embeddings in ``module`` (baseline: its
        words' embeddings zeroed, pads and every other source kept): ``(n, L)`` attributions (0 at pads) and the
        completeness gap per pair. A forward hook scales the embedding outputs; IG of a word's scale is IG of its
        embedding vector summed over dimensions."""
        tokens = module.tokens[items]
        pads = (tokens == 0).float()
        state: dict[str, torch.Tensor] = {}

        def scale(_mod: nn.Module, _inp: tuple, out: torch.Tensor) -> torch.Tensor:
            return out * state["scale"][..., None]

        def forward(s: torch.Tensor, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
            state["scale"] = s
            return model.gated_score(u, i, torch.ones(len(u), len(model.explain_sources()), device=u.device))

        from captum.attr import IntegratedGradients  # imports matplotlib: only when attributing

        hook = module.embedding.register_forward_hook(scale)
        was_training = model.training
        model.eval()
        try:
            attr = IntegratedGradients(forward).attribute(
                torch.ones_like(pads),
                baselines=pads,
                additional_forward_args=(users, items),
                n_steps=self.n_steps,
                method="gausslegendre",
            )
            with torch.no_grad():
                gap = forward(torch.ones_like(pads), users, items) - forward(pads, users, items) - attr.sum(1)
        finally:
            hook.remove()
            model.train(was_training)
        return attr.detach().cpu().numpy(), gap.cpu().numpy()

    def tokens(
        self,
        model: Recommender,
        users: torch.Tensor,
        items: torch.Tensor,
        user_ids: np.ndarray,
        ranks: np.ndarray,
        item_ids: np.ndarray,
    ) -> tuple[pd.DataFrame | None, dict[str, float]]:
        """The ``n_tokens`` words with the largest |attribution| per pair and token modality, and the mean
        |completeness gap| (``explain/token_gap_<modality>``); None without a token encoder."""
        modules = getattr(model, "token_modules", dict)()
        if not modules or not self.n_tokens:
            return None, {}
        frames, metrics = [], {}
        for m, module in modules.items():
            chunks = [
                self.token_attributions(model, module, users[a : a + self.batch_size], items[a : a + self.batch_size])
                for a in range(0, len(users), self.batch_size)
            ]
            attr = np.concatenate([c[0] for c in chunks])
            metrics[f"explain/token_gap_{m}"] = float(np.abs(np.concatenate([c[1] for c in chunks])).mean())
            k = min(self.n_tokens, attr.shape[1])
            order = np.argsort(-np.abs(attr), axis=1, kind="stable")[:, :k]
            tok = module.tokens[items].cpu().numpy()
            ids = np.take_along_axis(tok, order, 1)
            real = ids.ravel() > 0
            words = np.asarray(module.words, dtype=object)
            frames.append(
                pd.DataFrame(
                    {
                        "user": np.repeat(user_ids, k)[real],
                        "rank": np.repeat(ranks, k)[real],
                        "item": np.repeat(item_ids, k)[real],
                        "modality": m,
                        "token_rank": np.tile(np.arange(1, k + 1), len(attr))[real],
                        "position": order.ravel()[real],
                        "word": words[ids.ravel()[real]],
                        "attribution": np.take_along_axis(attr, order, 1).ravel()[real],
                    }
                )
            )
        return pd.concat(frames, ignore_index=True), metrics

    def evidence(
        self, model: Recommender, users: np.ndarray, items: np.ndarray, train: Interactions
    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Per frozen modality of the model: ``(modality, (n, n_evidence) training items, their cosine similarity)``
        nearest to each recommended item among the user's training items that have the modality (item -1 and
        NaN where there are fewer, or where the recommended item lacks the modality)."""
        out = []
        if not self.n_evidence:
            return out
        seen = train.to_csr()
        for m, f in getattr(model, "features", {}).items():
            if not f.frozen:
                continue
            x = np.asarray(f.values, np.float32)
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            top = np.full((len(users), self.n_evidence), -1, np.int64)
            sim = np.full((len(users), self.n_evidence), np.nan, np.float32)
            k = min(self.n_evidence, x.shape[0])
            for a in range(0, len(users), 1024):
                u, i = users[a : a + 1024], items[a : a + 1024]
                s = x[i] @ x.T
                allowed = (seen[u].toarray() > 0) & f.mask[None, :] & f.mask[i][:, None]
                s = np.where(allowed, s, -np.inf)
                order = np.argsort(-s, axis=1, kind="stable")[:, :k]
                best = np.take_along_axis(s, order, 1)
                ok = np.isfinite(best)
                top[a : a + 1024, :k] = np.where(ok, order, -1)
                sim[a : a + 1024, :k] = np.where(ok, best, np.nan)
            out.append((m, top, sim))
        return out

    def explain(
        self, model: Recommender, result: EvalResult, train: Interactions, user_ids: np.ndarray, item_ids: np.ndarray
    ) -> Explanations:
        """Explain the top-``top_k`` lists in ``result`` (an evaluation with ``keep_topk``) of the sampled users;
        ``user_ids`` / ``item_ids`` map contiguous ids to raw ones in the tables."""
        if result.topk_items is None:
            raise ValueError("explanations need the evaluation's top-K lists (evaluate with keep_topk=True)")
        rows = self.sample(result.users)
        k = min(self.top_k, result.topk_items.shape[1])
        items = result.topk_items[rows, :k]
        ranked = items >= 0
        users = np.repeat(result.users[rows], k)[ranked.ravel()]
        ranks = np.tile(np.arange(1, k + 1), len(rows))[ranked.ravel()]
        scores = result.topk_scores[rows, :k][ranked]
        items = items[ranked]
        if not len(users):
            raise ValueError("explanations: no ranked test recommendation to explain")
        device = model.device
        att = self.attribute(model, torch.as_tensor(users, device=device), torch.as_tensor(items, device=device))
        frame = pd.DataFrame(
            {"user": user_ids[users], "rank": ranks, "item": item_ids[items], "score": scores, "method": att.method}
        )
        frame["baseline"] = att.baseline
        for k_s, s in enumerate(att.sources):
            frame[f"contribution_{s}"] = att.contributions[:, k_s]
        frame["completeness_gap"] = scores - att.baseline - att.contributions.sum(1)
        for s, w in att.weights.items():
            frame[f"weight_{s}"] = w
        for k_s, s in enumerate(att.sources):
            frame[f"deletion_{s}"] = att.deletion[:, k_s]
        frame["user_train_events"] = np.bincount(train.users, minlength=train.n_users)[users]
        frame["item_train_events"] = np.bincount(train.items, minlength=train.n_items)[items]
        evidence = []
        for m, top, sim in self.evidence(model, users, items, train):
            n_ev = top.shape[1]
            found = top.ravel() >= 0
            evidence.append(
                pd.DataFrame(
                    {
                        "user": np.repeat(user_ids[users], n_ev)[found],
                        "rank": np.repeat(ranks, n_ev)[found],
                        "item": np.repeat(item_ids[items], n_ev)[found],
                        "modality": m,
                        "evidence_rank": np.tile(np.arange(1, n_ev + 1), len(users))[found],
                        "train_item": item_ids[top.ravel()[found]],
                        "similarity": sim.ravel()[found],
                    }
                )
            )
        ev = pd.concat(evidence, ignore_index=True) if evidence else pd.DataFrame(columns=[*EVIDENCE_COLUMNS])
        u, i = torch.as_tensor(users, device=device), torch.as_tensor(items, device=device)
        tokens, token_metrics = self.tokens(model, u, i, user_ids[users], ranks, item_ids[items])
        return Explanations(frame, ev, self.metrics(att, scores) | token_metrics, tokens)

    @staticmethod
    def metrics(att: Attribution, scores: np.ndarray) -> dict[str, float]:
        """``explain/deletion_top`` (mean |score change| when the source with the largest |contribution| is zeroed)
        vs ``explain/deletion_random`` (the same for a uniformly random source, its exact expectation), the same
        among item modalities only (``..._modality``, with two or more), each source's mean contribution and mean
        share of the absolute contributions, and the mean absolute completeness gap."""
        c, d = att.contributions, np.abs(att.deletion)
        out = {"explain/n_pairs": float(len(c))}
        gap = scores - att.baseline - c.sum(1)
        out["explain/completeness_gap"] = float(np.mean(np.abs(gap)))
        share = np.abs(c) / np.maximum(np.abs(c).sum(1, keepdims=True), 1e-12)
        for k, s in enumerate(att.sources):
            out[f"explain/contribution_{s}"] = float(c[:, k].mean())
            out[f"explain/share_{s}"] = float(share[:, k].mean())
        groups = {"": np.arange(len(att.sources))}
        mods = [k for k, s in enumerate(att.sources) if s not in ("id", "user_features")]
        if len(mods) >= 2:
            groups["_modality"] = np.asarray(mods)
        for suffix, cols in groups.items():
            top = cols[np.argmax(np.abs(c[:, cols]), 1)]
            out[f"explain/deletion_top{suffix}"] = float(d[np.arange(len(d)), top].mean())
            out[f"explain/deletion_random{suffix}"] = float(d[:, cols].mean())
        return out
