"""Tower features computed once and cached on disk, keyed by content hash and tower version.

An epoch of head training then reads a few megabytes instead of running the towers again. The
cache is a folder per tower version holding ``safetensors`` shards (a ``features`` matrix and the
row keys in the file's metadata), each written to a temporary name and renamed, so an interrupted
run leaves either a whole shard or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.errors import storage_error
from artsim.model.towers import ImageTower, TextTower
from artsim.runfolder import replacing

ProgressCallback = Callable[[int], None]


class CacheNotWritten(UserWarning):
    """The feature cache could not be written; features are computed again next time."""


def default_cache_dir() -> Path:
    """``$ARTSIM_CACHE/features`` or ``~/.cache/artsim/features``."""
    root = os.environ.get("ARTSIM_CACHE") or os.path.join(Path.home(), ".cache", "artsim")
    return Path(root) / "features"


def keep_computed(
    keys: list[str],
    features: np.ndarray,
    computed: dict[str, np.ndarray],
    cache: FeatureCache | None,
    progress: ProgressCallback | None,
) -> None:
    """Rows just computed for ``keys``: written to the cache (if any), collected in ``computed``
    and reported to ``progress``."""
    if cache is not None:
        cache.put(keys, features)
    computed.update(zip(keys, features, strict=True))
    if progress:
        progress(len(keys))


def file_key(path: str | Path) -> str:
    """sha256 of a file's bytes: the same picture under two names is computed once."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def text_key(text: str) -> str:
    """sha256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FeatureCache:
    """Feature vectors on disk for one tower version.

    >>> cache = FeatureCache(tmp_path, "tiny-image-32")
    >>> cache.put(["k1"], np.ones((1, 32), np.float32)); cache.get(["k1"]).shape
    (1, 32)
    """

    def __init__(self, root: str | Path | None, tower_version: str):
        self.folder = Path(root or default_cache_dir()) / tower_version.replace("/", "_")
        self._rows: dict[str, np.ndarray] = {}
        self._loaded = False
        self.unwritable = ""  # why the folder cannot be written, once a write failed

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            shards = sorted(self.folder.glob("*.safetensors")) if self.folder.is_dir() else []
        except OSError:  # a folder we may not list: an empty cache
            shards = []
        for shard in shards:
            try:
                with safe_open(str(shard), framework="numpy") as handle:
                    keys = json.loads(handle.metadata()["keys"])
                    matrix = handle.get_tensor("features")
            except Exception:
                continue
            for key, row in zip(keys, matrix, strict=False):
                self._rows[key] = row

    def __contains__(self, key: str) -> bool:
        self._load()
        return key in self._rows

    def get(self, keys: Sequence[str]) -> np.ndarray:
        self._load()
        return np.stack([self._rows[key] for key in keys]).astype(np.float32)

    def put(self, keys: Sequence[str], matrix: np.ndarray) -> None:
        """Keep rows in memory and, when the folder can be written, on disk. A cache that
        cannot be written (another user's folder, a read-only or full disk) is only slower:
        the rows stay in memory, one warning says why, and nothing is left behind."""
        if len(keys) == 0:
            return
        self._load()
        for key, row in zip(keys, matrix, strict=True):
            self._rows[key] = np.asarray(row, dtype=np.float32)
        if self.unwritable:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{uuid.uuid4().hex}.safetensors"
            with replacing(self.folder / name) as temporary:
                save_file(
                    {"features": np.ascontiguousarray(matrix, dtype=np.float32)},
                    str(temporary),
                    metadata={"keys": json.dumps(list(keys))},
                )
        except OSError as error:
            if storage_error(error) is None:
                raise
            self.unwritable = f"{self.folder}: {error.strerror or error}"
            warnings.warn(
                f"the feature cache cannot be written ({self.unwritable}); features are "
                "computed again next time",
                CacheNotWritten,
                stacklevel=2,
            )


class _SharedProgress:
    """Rows done over several passes of the same images, reported as rows of one pass."""

    def __init__(self, progress: ProgressCallback, passes: int):
        self.progress, self.passes, self.done, self.reported = progress, passes, 0, 0

    def __call__(self, rows: int) -> None:
        self.done += rows
        whole = self.done // self.passes
        if whole > self.reported:
            self.progress(whole - self.reported)
            self.reported = whole


def _batched(sequence: Sequence, size: int):
    for start in range(0, len(sequence), size):
        yield sequence[start : start + size]


@torch.no_grad()
def compute_image_features(
    tower: ImageTower,
    paths: Sequence[str | Path],
    cache: FeatureCache | None = None,
    batch_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: ProgressCallback | None = None,
    device: str | torch.device = "cpu",
    devices: int = 1,
    num_nodes: int = 1,
) -> np.ndarray:
    """Tower features for each image path, reading cached rows and computing only the missing.

    With ``devices * num_nodes > 1`` the missing rows are computed by that many processes
    (:func:`artsim.model.predict.predict_image_features`) and merged in input order. A paired
    tower (content and copy, :class:`artsim.model.towers.PairedImageTower`) computes its parts
    one after the other, each with its own cache folder beside ``cache``'s, and concatenates them.
    """
    parts = getattr(tower, "parts", None)
    if parts:
        return _paired_features(
            parts,
            paths,
            cache,
            progress,
            batch_size=batch_size,
            max_pixels=max_pixels,
            device=device,
            devices=devices,
            num_nodes=num_nodes,
        )
    keys = [file_key(path) for path in paths]
    missing = sorted(
        {key: index for index, key in enumerate(keys) if not (cache and key in cache)}.items()
    )
    computed: dict[str, np.ndarray] = {}

    def keep(batch_keys: list[str], features: np.ndarray) -> None:
        keep_computed(batch_keys, features, computed, cache, progress)

    if batch_size is None:
        # On CPU small batches are faster: large activation buffers, freed and allocated again
        # every batch, cost more in page faults than batching saves (BENCHMARKS.md, Training).
        batch_size = getattr(tower, "cpu_batch_size", 4) if str(device) == "cpu" else 64
    if missing and devices * num_nodes > 1:
        _compute_in_processes(tower, paths, missing, keep, max_pixels, device, devices, num_nodes)
    elif missing:
        _compute_here(tower, paths, missing, keep, batch_size, max_pixels, device)
    if progress:
        progress(len(keys) - len(missing))  # rows read from the cache count as done
    return _rows_in_input_order(keys, computed, cache, tower.dim)


def _paired_features(
    parts: Sequence[ImageTower],
    paths: Sequence[str | Path],
    cache: FeatureCache | None,
    progress: ProgressCallback | None,
    **options,
) -> np.ndarray:
    """A paired tower's features: each part's (:func:`compute_image_features` with
    ``options``), each cached in its own folder beside ``cache``'s, concatenated."""
    root = cache.folder.parent if cache is not None else None
    shared = _SharedProgress(progress, len(parts)) if progress else None
    return np.concatenate(
        [
            compute_image_features(
                part,
                paths,
                FeatureCache(root, part.version) if cache is not None else None,
                progress=shared,
                **options,
            )
            for part in parts
        ],
        axis=1,
    )


def _compute_in_processes(
    tower: ImageTower,
    paths: Sequence[str | Path],
    missing: list[tuple[str, int]],
    keep: Callable[[list[str], np.ndarray], None],
    max_pixels: int,
    device: str | torch.device,
    devices: int,
    num_nodes: int,
) -> None:
    """The ``missing`` (key, path index) rows computed by ``devices * num_nodes`` processes
    (:func:`artsim.model.predict.predict_image_features`), handed to ``keep`` at once."""
    from artsim.model.predict import predict_image_features  # Lightning only when asked

    accelerator = "cpu" if str(device) == "cpu" else "gpu"
    features = predict_image_features(
        tower,
        [paths[index] for _, index in missing],
        devices=devices,
        num_nodes=num_nodes,
        accelerator=accelerator,
        max_pixels=max_pixels,
    )
    keep([key for key, _ in missing], features)


def _compute_here(
    tower: ImageTower,
    paths: Sequence[str | Path],
    missing: list[tuple[str, int]],
    keep: Callable[[list[str], np.ndarray], None],
    batch_size: int,
    max_pixels: int,
    device: str | torch.device,
) -> None:
    """The ``missing`` (key, path index) rows computed in this process, ``batch_size`` at a
    time, each batch handed to ``keep``."""
    tower.to(device).eval()

    def load(index: int) -> torch.Tensor:
        return tower.preprocess(load_rgb(paths[index], max_pixels=max_pixels))

    # Decoding and resizing release the GIL in PIL: two threads keep the tower fed.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for batch in _batched(missing, batch_size):
            pixels = torch.stack(list(pool.map(load, [index for _, index in batch])))
            features = tower(pixels.to(device)).float().cpu().numpy()
            keep([key for key, _ in batch], features)


def _rows_in_input_order(
    keys: list[str], computed: dict[str, np.ndarray], cache: FeatureCache | None, dim: int
) -> np.ndarray:
    """One row per key, in order: the rows just ``computed``, the others read from ``cache``."""
    rows = [computed.get(key) for key in keys]
    cached_keys = [key for key, row in zip(keys, rows, strict=True) if row is None]
    if cached_keys:
        cached = dict(zip(cached_keys, cache.get(cached_keys), strict=True))
        rows = [cached[key] if row is None else row for key, row in zip(keys, rows, strict=True)]
    if not rows:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack(rows).astype(np.float32)


@torch.no_grad()
def compute_text_features(
    tower: TextTower,
    texts: Sequence[str],
    cache: FeatureCache | None = None,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Tower features for each text (empty texts get a zero row: they have no text modality)."""
    keys = [text_key(text) for text in texts]
    unique = {key: text for key, text in zip(keys, texts, strict=True) if text.strip()}
    todo = [(key, text) for key, text in unique.items() if not (cache and key in cache)]
    computed: dict[str, np.ndarray] = {}
    for batch in _batched(todo, batch_size):
        features = tower.encode([text for _, text in batch]).float().cpu().numpy()
        keep_computed([key for key, _ in batch], features, computed, cache, progress)
    if progress:
        progress(len(texts) - len(todo))  # cached and empty texts count as done
    matrix = np.zeros((len(texts), tower.dim), dtype=np.float32)
    for row, (key, text) in enumerate(zip(keys, texts, strict=True)):
        if not text.strip():
            continue
        matrix[row] = computed[key] if key in computed else cache.get([key])[0]
    return matrix
