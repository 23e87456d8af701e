"""MovieLens-1M with posters, item text and genres as modalities (``dataset=ml1m_mm``)."""

from __future__ import annotations

from pathlib import Path

from mmbench.data.interactions import Dataset
from mmbench.data.ml1m import MovieLens1M, check_official, resolve_ml1m
from mmbench.data.movielens import read_movielens


class MovieLens1MMM(MovieLens1M):
    """ML-1M (same folder, same checks) plus item modalities ``image`` (posters of
    ``<data folder>/movielens/posters``, beside ``ml-1m``, keyed by movie id directly), ``text`` (a template
    over title, year and genres) and ``genres`` (18-dim multi-hot). A movie without a poster keeps its place,
    image masked. Users keep the ``demographics`` modality."""

    name = "ml1m_mm"

    def __init__(
        self,
        data_dir: str | None = None,
        cache_dir: str = "~/.cache/mmbench",
        download: bool = True,
        zip_prefix_digits: int = 1,
        image_size: int = 224,
        text_template: str = "{title} ({year}). Genres: {genres}.",
        posters: str | None = None,
    ) -> None:
        super().__init__(data_dir, cache_dir, download, zip_prefix_digits)
        if image_size < 8:
            raise ValueError(f"dataset.image_size={image_size}: must be at least 8")
        self.image_size, self.text_template, self.posters = image_size, text_template, posters

    def read(self) -> Dataset:
        root = resolve_ml1m(self.data_dir, self.cache_dir, self.download)
        posters = Path(self.posters).expanduser() if self.posters else root.parent / "posters"
        if not posters.is_dir():
            raise FileNotFoundError(
                f"{posters} not found: ml1m_mm needs the posters beside ml-1m (movielens/posters/images/<id>.jpg) "
                "or dataset.posters=<folder>"
            )
        ds = read_movielens(
            root,
            self.name,
            posters=posters,
            image_size=self.image_size,
            text_template=self.text_template,
            zip_prefix_digits=self.zip_prefix_digits,
        )
        check_official(ds)
        return ds
