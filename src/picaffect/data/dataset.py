"""Torch access to a built dataset, one split at a time.

The image cache is memory-mapped lazily in each process that reads it, so that
DataLoader workers share the page cache instead of each holding (or pickling) a
copy. Images come out as uint8 CHW tensors: turning them into floats happens once
per batch, where it is cheapest.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..core.errors import PicaffectError
from .cache import CacheError, cache_build_id, open_cache
from .layout import BUILD_ID_ATTR, CACHE, MANIFEST
from .splits import SPLITS


class DatasetError(PicaffectError):
    """A folder that is not a complete, consistent built dataset."""


def load_manifest(root: str | Path) -> pd.DataFrame:
    """The manifest of a built dataset, once it is known to belong with the image cache beside it.

    A manifest indexes rows of ``images.npy`` by position, so a manifest from one build
    beside a cache from another (an interrupted rebuild by an older picaffect, files
    copied by hand) would pair ratings with the wrong pictures without any error. Both
    carry the id of the build that wrote them; a folder whose ids differ or are missing,
    or whose cache is shorter than the manifest says, is refused here, before any reader
    (training, evaluation, experiments) can use it.
    """
    root = Path(root)
    path, cache = root / MANIFEST, root / CACHE
    if not path.is_file():
        raise DatasetError(f"{root} is not a built dataset: {MANIFEST} is missing (run `picaffect build` first)")
    if not cache.is_file():
        raise DatasetError(f"{root} is not a complete dataset: {CACHE} is missing (rebuild it with `picaffect build`)")
    try:
        manifest = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise DatasetError(f"{path}: cannot read the manifest ({e}); rebuild the dataset") from None
    try:
        cache_id = cache_build_id(cache)
    except CacheError as e:
        raise DatasetError(f"{e}; rebuild the dataset") from None
    manifest_id = manifest.attrs.get(BUILD_ID_ATTR)
    if not manifest_id or not cache_id:
        missing = " and ".join(n for n, i in ((MANIFEST, manifest_id), (CACHE, cache_id)) if not i)
        raise DatasetError(f"{root}: {missing} carry no build id, so nothing proves they belong together "
                           f"(written by an older picaffect?); rebuild the dataset with `picaffect build`")
    if manifest_id != cache_id:
        raise DatasetError(f"{root}: {MANIFEST} (build {manifest_id}) and {CACHE} (build {cache_id}) come from "
                           f"different builds, so ratings would be paired with the wrong pictures; rebuild the dataset")
    rows = int(open_cache(cache).shape[0])
    needed = int(manifest["index"].max()) + 1 if len(manifest) else 0
    if needed > rows:
        raise DatasetError(f"{root}: {MANIFEST} indexes {needed} pictures but {CACHE} holds {rows}; "
                           "rebuild the dataset")
    return manifest


class RatedImages(Dataset):
    """The ok rows of one split (or ``"all"``): ``(image uint8 [3,H,W], target float32 [2])``.

    Targets are (valence, arousal) on 1..9. ``limit`` keeps the first N rows, for
    smoke runs. ``rows`` exposes the manifest rows in dataset order.
    """

    def __init__(self, root: str | Path, split: str = "train", limit: int | None = None) -> None:
        if split not in SPLITS + ("all",):
            raise DatasetError(f"unknown split {split!r}; choose one of {', '.join(SPLITS + ('all',))}")
        self.root = Path(root)
        manifest = load_manifest(self.root)
        rows = manifest[manifest["status"] == "ok"]
        if split != "all":
            rows = rows[rows["split"] == split]
        if limit is not None:
            rows = rows.iloc[:limit]
        self.rows = rows.reset_index(drop=True)
        self.split = split
        self._index = self.rows["index"].to_numpy(np.int64)
        self.targets = torch.tensor(self.rows[["valence", "arousal"]].to_numpy(np.float32))
        self._images: np.ndarray | None = None

    @property
    def images(self) -> np.ndarray:
        if self._images is None:
            self._images = open_cache(self.root / CACHE)
        return self._images

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_images"] = None  # each worker maps the file itself
        return state

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(np.array(self.images[self._index[i]])).permute(2, 0, 1)
        return image, self.targets[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch in one read: the DataLoader uses this when present."""
        order = np.asarray(indices, dtype=np.int64)
        images = torch.from_numpy(np.ascontiguousarray(self.images[self._index[order]])).permute(0, 3, 1, 2)
        return images, self.targets[order]

    @property
    def image_size(self) -> int:
        return int(self.images.shape[1])

    @property
    def groups(self) -> np.ndarray:
        """Each row's group of near-duplicate pictures (OASIS themes), as text; a row without one is its own
        group. Cross-validation folds keep a group together, as the ``group`` split does."""
        return row_groups(self.rows)


def keep_batch(batch):
    """Collate for ``RatedImages``: ``__getitems__`` already returns a stacked batch."""
    return batch


def make_loader(dataset: RatedImages, batch_size: int, *, shuffle: bool, workers: int = 0,
                seed: int = 0, drop_last: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader that reads whole batches from the cache at once (seeded shuffling)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                                       collate_fn=keep_batch, generator=generator, drop_last=drop_last,
                                       persistent_workers=workers > 0)


def row_groups(rows: pd.DataFrame) -> np.ndarray:
    """Each row's group of near-duplicate pictures, as text; a row without one is its own group."""
    group = rows["group"].where(rows["group"].notna(), rows["id"]) if "group" in rows else rows["id"]
    return group.astype(str).to_numpy()
