"""dataset=movielens: every release layout (written here in its documented format, or the real ML-100K / ML-1M),
strict parsing with file and line, posters by movie id, tags built from training events only."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from mmbench.data.interactions import Interactions
from mmbench.data.movielens import MovieLens, detect_release, read_ratings
from mmbench.data.readers import DataFormatError
from mmbench.data.train_content import TrainTags, content_for_training

# ML-10M layout (its README): ratings.dat UserID::MovieID::Rating::Timestamp with half stars, movies.dat
# MovieID::Title::Genres (UTF-8), tags.dat UserID::MovieID::Tag::Timestamp; no users.dat.
ML10M = {
    "ratings.dat": "1::122::5::838985046\n1::185::4.5::838983525\n2::122::3::868245777\n2::231::0.5::868244562\n"
    "3::185::2::1133571238\n",
    "movies.dat": "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action|Crime|Thriller\n"
    "231::Dumb & Dumber (1994)::Comedy\n999::Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)::Comedy|Romance\n",
    "tags.dat": "1::122::funny::1188263867\n2::122::Funny ::1188263880\n3::122::dull::1188263881\n"
    "2::231::stupid::1188263890\n3::185::hackers::1188263900\n",
}
# ML-25M / ML-20M / ML-32M layout: CSV with header lines, quoted titles with commas, "(no genres listed)".
ML25M = {
    "ratings.csv": "userId,movieId,rating,timestamp\n1,296,5.0,1147880044\n1,306,3.5,1147868817\n"
    "2,296,4.0,1141415820\n3,307,0.5,1439472215\n3,306,1.0,1439472600\n",
    "movies.csv": "movieId,title,genres\n296,Pulp Fiction (1994),Comedy|Crime|Drama|Thriller\n"
    '306,"Three Colors: Red (Trois couleurs: Rouge) (1994)",Drama\n307,"Three Colors: Blue, The (1993)",Drama\n'
    "308,Untitled,(no genres listed)\n",
    "tags.csv": 'userId,movieId,tag,timestamp\n1,296,"dark comedy, violence",1147880100\n2,296,classic,1141415900\n'
    "3,306,kieslowski,1439472300\n",
    "links.csv": "movieId,imdbId,tmdbId\n296,0110912,680\n",
}
# ml-latest-small: the same files, no tags for some movies, a title without a year and trailing space.
ML_LATEST_SMALL = {
    "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n6,1,5.0,845553522\n",
    "movies.csv": "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    "3,Grumpier Old Men (1995) ,Comedy|Romance\n",
    "tags.csv": "userId,movieId,tag,timestamp\n2,60756,funny,1445714994\n",
}


def write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_ml10m_layout(tmp_path):
    folder = write(tmp_path / "ml-10M100K", ML10M)
    assert detect_release(folder) == "dat"
    ds = MovieLens(str(folder)).read()
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (3, 3, 5)  # movie 999 has no rating: not in catalogue
    assert ds.item_ids.tolist() == [122, 185, 231]
    assert ds.interactions.ratings.tolist() == [5, 4.5, 3, 0.5, 2]
    assert ds.interactions.timestamps[1] == 838983525
    assert ds.content["text"].values == [
        "Boomerang (1992). Genres: Comedy, Romance.",
        "Net, The (1995). Genres: Action, Crime, Thriller.",
        "Dumb & Dumber (1994). Genres: Comedy.",
    ]
    # genres: sorted vocabulary Action, Comedy, Crime, Romance, Thriller
    np.testing.assert_array_equal(ds.content["genres"].values, [[0, 1, 0, 1, 0], [1, 0, 1, 0, 1], [0, 1, 0, 0, 0]])
    assert ds.user_content == {}  # ML-10M has no demographics
    assert set(ds.files) == {"ratings.dat", "movies.dat", "tags.dat"}
    assert ds.files["tags.dat"] == hashlib.sha256((folder / "tags.dat").read_bytes()).hexdigest()
    assert isinstance(ds.content["tags"].values, TrainTags)


def test_ml25m_layout_and_tags_from_training_events_only(tmp_path):
    folder = write(tmp_path / "ml-25m", ML25M)
    assert detect_release(folder) == "csv"
    ds = MovieLens(str(folder)).read()
    assert ds.item_ids.tolist() == [296, 306, 307]  # 308 unrated
    assert ds.item_table["title"].tolist()[1:] == [
        "Three Colors: Red (Trois couleurs: Rouge) (1994)",
        "Three Colors: Blue, The (1993)",
    ]
    assert ds.item_table["year"].tolist() == [1994, 1994, 1993]
    assert ds.content["text"].values[2] == "Three Colors: Blue, The (1993). Genres: Drama."
    assert set(ds.files) == {"ratings.csv", "movies.csv", "tags.csv"}  # links.csv is not read
    inter = ds.interactions
    # training: every event but user 2's rating of 296 (u index 1, item index 0)
    train = inter.subset(~((inter.users == 1) & (inter.items == 0)))
    tags = content_for_training(ds, train).content["tags"]
    assert tags.values == ["dark comedy, violence", "kieslowski", ""]  # user 2's "classic" on 296 is held out
    assert tags.mask.tolist() == [True, True, False]
    assert isinstance(ds.content["tags"].values, TrainTags)  # the dataset itself is unchanged
    with pytest.raises(TypeError, match="depends on the split"):
        ds.content["tags"].values.fingerprint()


def test_tags_are_counted_case_folded_and_capped(tmp_path):
    folder = write(tmp_path / "ml-10m", ML10M)
    ds = MovieLens(str(folder), max_tags=1).read()
    full = content_for_training(ds, ds.interactions).content["tags"]
    # item 122: "funny" by users 1 and 2 (case and spaces folded), "dull" by user 3 who never rated 122
    assert full.values == ["funny", "hackers", "stupid"]
    ds2 = MovieLens(str(folder)).read()
    assert content_for_training(ds2, ds2.interactions).content["tags"].values[0] == "funny"
    # restricting the catalogue keeps each item's tags with it
    sub = ds2.restrict(np.flatnonzero(ds2.interactions.items != 0))
    assert sub.item_ids.tolist() == [185, 231]
    assert content_for_training(sub, sub.interactions).content["tags"].values == ["hackers", "stupid"]


def test_ml_latest_small_layout(tmp_path):
    ds = MovieLens(str(write(tmp_path / "ml-latest-small", ML_LATEST_SMALL))).read()
    assert ds.item_table["year"].tolist() == [1995, 1995]
    assert ds.content["text"].values[1] == "Grumpier Old Men (1995). Genres: Comedy, Romance."
    # the only tag is on a movie nobody rated: no item has tags
    assert not content_for_training(ds, ds.interactions).content["tags"].mask.any()


def test_posters_by_movie_id_missing_is_masked(tmp_path):
    folder = write(tmp_path / "ml-25m", ML25M)
    posters = tmp_path / "posters" / "images"
    posters.mkdir(parents=True)
    Image.new("RGB", (30, 40), (255, 0, 0)).save(posters / "296.jpg")
    Image.new("RGB", (30, 40), (0, 0, 255)).save(posters / "307.jpg", format="PNG")  # a PNG named .jpg
    ds = MovieLens(str(folder), posters=str(tmp_path / "posters"), image_size=8).read()
    img = ds.content["image"]
    assert img.mask.tolist() == [True, False, True]
    assert img.values[0].shape == (3, 8, 8) and img.values[0][0].min() >= 250 and img.values[2][2].min() == 255
    assert not img.values[1].any()


@pytest.mark.parametrize(
    ("name", "text", "line", "what"),
    [
        ("ratings.dat", "1::2::3::4\n1::2::3\n", 2, "3 fields"),
        ("ratings.dat", "1::2::3::4\n\n1::2:x:3::4\n", 3, "3 fields, expected 4"),
        ("ratings.dat", "1::2::3::4\n1::b::3::4\n", 2, "'item' = 'b' is not a number"),
        ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,2,,4\n", 3, "'rating' is empty"),
        ("ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n1,2,3,4,5\n", 3, "5 fields"),
        ("u.data", "1\t2\t3\t4\n1\t2\tthree\t4\n", 2, "'rating' = 'three'"),
        ("u.data", "1\t2\t3\t4\n\n1\t2\tnan\t4\n", 3, "'rating' = 'nan' is not a number"),
    ],
)
def test_malformed_rating_lines_name_file_and_line(tmp_path, name, text, line, what):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataFormatError, match=f"{name}: line {line}: .*{what}"):
        read_ratings(tmp_path / name)


def test_bad_headers_movies_and_folders(tmp_path):
    (tmp_path / "ratings.csv").write_text("user,item,rating,timestamp\n1,2,3,4\n")
    with pytest.raises(DataFormatError, match="ratings.csv: line 1: header"):
        read_ratings(tmp_path / "ratings.csv")
    with pytest.raises(DataFormatError, match="not a MovieLens release folder"):
        MovieLens(str(write(tmp_path / "empty", {"README": "x"}))).read()
    bad = dict(ML10M, **{"movies.dat": "122::Boomerang (1992)::Comedy\n185::Net, The (1995)\n"})
    with pytest.raises(DataFormatError, match="movies.dat: line 2: 2 fields, expected 3"):
        MovieLens(str(write(tmp_path / "bad", bad))).read()


def test_reads_real_ml100k_like_the_ml100k_loader(ml100k, data_dir):
    ds = MovieLens(str(data_dir / "movielens" / "ml-100k"), posters=str(data_dir / "movielens" / "posters")).read()
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (943, 1682, 100_000)
    for a in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(ds.interactions, a), getattr(ml100k.interactions, a))
    assert ds.files == ml100k.files
    assert ds.user_table["zip_prefix"].iloc[0] == "8"  # user 1: zip 85711
    assert int(ds.content["image"].mask.sum()) == 1659  # the title join of dataset=ml100k_mm (README)
    assert ds.content["genres"].values.shape == (1682, 19)


def test_reads_real_ml1m(ml1m_dir):
    folder = ml1m_dir / "movielens" / "ml-1m"
    ds = MovieLens(str(folder)).read()
    lines = (folder / "ratings.dat").read_text().splitlines()
    assert len(ds.interactions) == len(lines)
    last = lines[-1].split("::")
    u, i = ds.interactions.users[-1], ds.interactions.items[-1]
    assert [ds.user_ids[u], ds.item_ids[i], ds.interactions.ratings[-1], ds.interactions.timestamps[-1]] == [
        int(x) for x in last
    ]
    assert isinstance(ds.interactions, Interactions)
    assert ds.user_table.loc[0, ["gender", "age", "age_group", "occupation", "zip_prefix"]].tolist() == [
        "F",
        1,
        "Under 18",
        "K-12 student",
        "4",
    ]


def test_pipeline_builds_tags_from_the_split_before_encoding(tmp_path):
    """dataset=movielens on a new release folder runs end to end with a tags encoder: the pipeline builds the
    tags text from the training part before the encoder stage (the raw material cannot be encoded)."""
    from hydra import initialize_config_dir
    from mlflow.tracking import MlflowClient

    from mmbench import pipeline
    from mmbench.config import CONF_DIR, compose

    rng = np.random.default_rng(0)
    users, items = np.nonzero(rng.random((30, 12)) < 0.6)
    ratings = "".join(
        f"{u + 1},{i + 100},{rng.integers(1, 6)}.0,{1000 + n}\n" for n, (u, i) in enumerate(zip(users, items))
    )
    movies = "".join(f"{i + 100},Movie {i} (19{80 + i}),Drama\n" for i in range(12))
    tags = "".join(f"{u + 1},{i + 100},tag{i % 3},{5000 + n}\n" for n, (u, i) in enumerate(zip(users[::4], items[::4])))
    folder = write(
        tmp_path / "my-ml",
        {
            "ratings.csv": "userId,movieId,rating,timestamp\n" + ratings,
            "movies.csv": "movieId,title,genres\n" + movies,
            "tags.csv": "userId,movieId,tag,timestamp\n" + tags,
        },
    )
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            [
                f"paths.work_dir={tmp_path}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                f"logger.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
                "dataset=movielens",
                f"dataset.path={folder}",
                "model=pop",
                "+encoder@encoders.tags=tfidf",
                "eval.progress=false",
            ],
        )
    res = pipeline.run(cfg)
    run = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").get_run(res.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["encoder.tags"] == "TfidfEncoder" and run.data.tags["dataset"] == "movielens"
    digest = hashlib.sha256((folder / "tags.csv").read_bytes()).hexdigest()
    assert run.data.tags["data_sha256.tags.csv"] == digest
