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


def test_user_profile_is_the_user_factors_plus_noise():
    ds = Synthetic(n_users=400, n_items=60, n_factors=4, profile_noise=0.5, missing_profile=0.25, seed=0).read()
    p = ds.user_content["profile"]
    assert p.values.shape == (400, 4) and p.values.dtype == np.float32
    assert 0.65 < p.mask.mean() < 0.85 and np.all(p.values[~p.mask] == 0)
    # the planted factors (unit variance after scaling) are recovered up to the noise: correlation 1/sqrt(1.25)
    U = np.random.default_rng(0).normal(size=(400, 4))  # Synthetic draws the user factors first
    r = np.corrcoef(U[p.mask].ravel(), p.values[p.mask].ravel())[0, 1]
    assert abs(r - 1 / np.sqrt(1 + 0.5**2)) < 0.03
    # the profile has its own generator: interactions and item content do not depend on its settings
    other = Synthetic(n_users=400, n_items=60, n_factors=4, profile_noise=2.0, seed=0).read()
    assert other.fingerprint() == ds.fingerprint()
    assert np.array_equal(other.content["image"].values, ds.content["image"].values)
