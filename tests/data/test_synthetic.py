import numpy as np

from mmbench.data.synthetic import Synthetic


def test_seeded_and_sized():
    a = Synthetic(n_users=50, n_items=80, interactions_per_user=10, seed=3).read()
    b = Synthetic(n_users=50, n_items=80, interactions_per_user=10, seed=3).read()
    c = Synthetic(n_users=50, n_items=80, interactions_per_user=10, seed=4).read()
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert a.n_users == 50 and a.n_items == 80
    counts = np.bincount(a.interactions.users)
    assert counts.min() >= 3 and abs(counts.mean() - 10) < 2
    assert set(np.unique(a.interactions.ratings)) <= {1, 2, 3, 4, 5}


def test_content_is_a_function_of_item_factors():
    ds = Synthetic(n_users=20, n_items=60, missing_image=0.25, seed=0).read()
    img, txt = ds.content["image"], ds.content["text"]
    assert img.values.shape == (60, 3, 16, 16) and img.values.dtype == np.uint8
    assert 0.5 < img.mask.mean() < 0.95
    assert len(txt.values) == 60 and txt.mask.all()
    assert all(w.startswith("f") for w in txt.values[0].split()[:-1])
