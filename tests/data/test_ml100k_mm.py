"""ML-100K-MM: poster matching by title and year, lazy images read by content, text template, genres."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmbench.data.ml100k_mm import MovieLens100KMM, PosterImages, load_image, match_posters

MOVIES = pd.DataFrame(
    {
        "id": [1, 2, 3, 4, 5, 6],
        "title": [
            "Toy Story (1995)",
            "Star Wars: Episode IV - A New Hope (1977)",
            "Postino, Il (The Postman) (1994)",
            "Heat (1995)",
            "Heat Wave (1995)",
            "Heat (1986)",
        ],
    }
)


def test_exact_and_fallback_matches_and_ambiguity_stays_unmatched():
    ids, how = match_posters(
        ["Toy Story (1995)", "Star Wars (1977)", "Postino, Il (1994)", "Hea (1995)", "Nothing (1990)", "unknown"],
        MOVIES,
    )
    assert ids.tolist() == [1, 2, 3, -1, -1, -1]
    assert how.tolist() == [1, 2, 2, 0, 0, 0]
    # "Heat (1995)" matches exactly even though "Heat Wave (1995)" contains it
    ids, how = match_posters(["Heat (1995)"], MOVIES)
    assert (ids[0], how[0]) == (4, 1)


def test_images_read_by_content_and_resized(tmp_path):
    rgb = np.zeros((20, 10, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "a.jpg", format="PNG")  # a PNG named .jpg
    img = load_image(tmp_path / "a.jpg", 8)
    assert img.shape == (3, 8, 8) and img.dtype == np.uint8
    assert img[0].min() == 200 and img[1].max() == 0
    lazy = PosterImages([tmp_path / "a.jpg", None], 8)
    assert len(lazy) == 2 and lazy[1].sum() == 0 and lazy[0][0, 0, 0] == 200
    fp = lazy.fingerprint()
    assert PosterImages([tmp_path / "a.jpg", None], 16).fingerprint() != fp


@pytest.fixture(scope="module")
def mm(data_dir):
    return MovieLens100KMM(str(data_dir), download=False, image_size=32).read()


def test_real_posters_text_genres(mm):
    assert mm.n_items == 1682 and len(mm.interactions) == 100_000
    img = mm.content["image"]
    assert 1620 <= img.mask.sum() < 1682  # never all, never dropped
    assert len(img.values) == 1682
    first = int(np.flatnonzero(img.mask)[0])
    x = img.values[first]
    assert x.shape == (3, 32, 32) and x.std() > 0
    missing = int(np.flatnonzero(~img.mask)[0])
    assert img.values[missing].sum() == 0
    # Toy Story is item 1 and ML-1M movie 1
    assert mm.item_table.loc[0, "poster_id"] == 1
    assert mm.content["text"].values[0] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    g = mm.content["genres"]
    assert g.values.shape == (1682, 19) and g.values[0].sum() == 3
    demo = mm.user_content["demographics"]
    assert demo.values.shape[0] == 943 and demo.mask.all() and {"age", "gender", "occupation"} <= set(demo.values)


def test_bad_template_names_the_field(data_dir):
    with pytest.raises(ValueError, match="text_template.*plot"):
        MovieLens100KMM(str(data_dir), download=False, text_template="{plot}").read()
