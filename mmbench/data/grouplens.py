"""Finding a GroupLens release on disk (data dir, then cache) or downloading its official zip into the cache,
verified by the zip's published MD5 and, where known, the SHA-256 of each file read."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class DataNotFoundError(FileNotFoundError):
    """The data is not on disk and could not be downloaded."""


@dataclass(frozen=True)
class Release:
    """One official release: ``<base>/movielens/<folder>/<files>`` on disk, ``<folder>/<files>`` in its zip."""

    title: str  # "MovieLens-100K", for messages
    folder: str  # "ml-100k": the zip's top folder and the folder under movielens/
    files: tuple[str, ...]
    file_sha256: dict[str, str] = field(default_factory=dict)  # checked after a download, where published/known

    @property
    def subdir(self) -> Path:
        return Path("movielens") / self.folder


def resolve(release: Release, data_dir: str | None, cache_dir: str, download: bool, url: str, zip_md5: str) -> Path:
    """``$MMBENCH_DATA_DIR/movielens/<folder>``, then the cache, then a download of ``url`` into the cache; an error
    naming the folders looked in and ``MMBENCH_DATA_DIR`` when none works."""
    tried = []
    for base in (data_dir, cache_dir):
        if base:
            folder = Path(base).expanduser() / release.subdir
            if all((folder / f).is_file() for f in release.files):
                return folder
            tried.append(str(folder))
    target = Path(cache_dir).expanduser() / release.subdir
    names = release.files[0] if len(release.files) == 1 else "{" + ",".join(release.files) + "}"
    hint = (
        f"{release.title} not found: looked in {', '.join(tried) or '(no folder configured)'}. "
        f"Set MMBENCH_DATA_DIR to a folder that holds {release.subdir}/{names} "
        f"(MMBENCH_DATA_DIR={os.environ.get('MMBENCH_DATA_DIR')!r})"
    )
    if not download:
        raise DataNotFoundError(hint + ", or allow dataset.download=true.")
    try:
        _download(release, url, zip_md5, target)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise DataNotFoundError(f"{hint}. Downloading {url} into {target} failed: {e}") from None
    return target


def _download(release: Release, url: str, zip_md5: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        zpath = Path(tmp) / f"{release.folder}.zip"
        log.info("downloading %s", url)
        with urllib.request.urlopen(url, timeout=30) as r, open(zpath, "wb") as f:
            shutil.copyfileobj(r, f)
        md5 = hashlib.md5(zpath.read_bytes()).hexdigest()
        if md5 != zip_md5:
            raise OSError(f"checksum mismatch for {url}: md5 {md5} != {zip_md5}")
        with zipfile.ZipFile(zpath) as z:
            z.extractall(tmp)
        unpacked = Path(tmp) / release.folder
        missing = [f for f in release.files if not (unpacked / f).is_file()]
        if missing:
            raise OSError(f"{url}: the zip has no {release.folder}/{missing}")
        for name, digest in release.file_sha256.items():
            got = hashlib.sha256((unpacked / name).read_bytes()).hexdigest()
            if got != digest:
                raise OSError(f"checksum mismatch for {name} in {url}: sha256 {got} != {digest}")
        shutil.move(str(unpacked), target)
