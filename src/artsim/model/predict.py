"""Image features of big collections on several processes or machines (Lightning's prediction
loop), merged back in input order.

``predict_image_features(tower, paths, devices=2)`` starts ``devices`` processes per machine
(``num_nodes`` machines, each started with the same command and Lightning's usual environment:
``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``). Each process runs the tower over its share of
the images; the shares are gathered to every process with ``all_gather_object`` and each
machine's first process hands the merged matrix back to the calling process through a file in a
temporary folder. A distributed sampler pads the last share with repeats; rows are placed by
their input index, so repeats fall away and the order is the input's.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.strategies import DDPStrategy
from PIL import Image
from safetensors.numpy import load_file, save_file
from torch.multiprocessing import ProcessRaisedException
from torch.utils.data import DataLoader, Dataset

from artsim import errors
from artsim.data.pictures.images import DEFAULT_MAX_PIXELS, load_rgb
from artsim.model.towers import ImageTower

MERGED = "features.safetensors"
# the last line of a worker's traceback when it stopped on one of artsim's user errors
_USER_ERROR_LINE = re.compile(r"artsim\.errors\.(\w+): (.+)")


def worker_user_error(error: BaseException) -> errors.UserError | None:
    """The user error (an unreadable image, say) that stopped a spawned worker, rebuilt in the
    calling process from the traceback text the worker sent back; None for any other failure.

    A worker's exception reaches the caller only as text (``ProcessRaisedException``), so
    without this the one-line message of an :class:`~artsim.errors.ImageError` would come back
    as a traceback.
    """
    lines = [line for line in str(error).splitlines() if line.strip()]
    found = _USER_ERROR_LINE.fullmatch(lines[-1].strip()) if lines else None
    if found is None:  # the worker's final exception was not one of artsim's
        return None
    name, message = found.groups()
    kind = getattr(errors, name, None)
    if not (isinstance(kind, type) and issubclass(kind, errors.UserError)):
        return None
    return kind(message)


class _ImageSet(Dataset):
    """The pictures, preprocessed. A picture that cannot be read (a user's error, such as a file
    that is not an image) becomes a blank one carrying its one-line reason: every process then
    reaches the gathering, and each raises the same error there (:class:`_MergeWriter`), so the
    one line reaches the caller whichever process fails first (had that process raised at once,
    another could report the closed connection instead)."""

    def __init__(self, paths: Sequence[str | Path], tower: ImageTower, max_pixels: int):
        self.paths, self.tower, self.max_pixels = [str(p) for p in paths], tower, max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        try:
            pixels = self.tower.preprocess(load_rgb(self.paths[index], max_pixels=self.max_pixels))
            problem = ""
        except errors.UserError as error:
            pixels = torch.zeros_like(self.tower.preprocess(Image.new("RGB", (8, 8))))
            problem = f"{type(error).__name__}\t{error}"
        return {"index": torch.tensor(index), "pixels": pixels, "problem": problem}


class _TowerPredictor(pl.LightningModule):
    def __init__(self, tower: ImageTower):
        super().__init__()
        self.tower = tower.eval()

    def predict_step(self, batch: dict, batch_index: int) -> dict:
        features = self.tower(batch["pixels"]).float()
        return {"index": batch["index"], "features": features, "problems": batch["problem"]}


class _SpawnStrategy(DDPStrategy):
    """``ddp_spawn`` whose workers take their process group down before they exit.

    Left to the interpreter's shutdown, the group's gloo threads are sometimes destroyed while
    still joinable and a worker aborts (SIGABRT, "terminate called without an active
    exception"), failing the whole command after its work was done.
    """

    def __init__(self) -> None:
        super().__init__(start_method="spawn")

    def teardown(self) -> None:
        super().teardown()
        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # no process still sends or receives when the group goes
            dist.destroy_process_group()


class _MergeWriter(BasePredictionWriter):
    """Gathers every process's rows and writes them, in input order, on each machine."""

    def __init__(self, folder: str, count: int, dim: int):
        super().__init__(write_interval="epoch")
        self.folder, self.count, self.dim = folder, count, dim

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        index = np.concatenate([p["index"].cpu().numpy() for p in predictions] or [np.zeros(0)])
        rows = [p["features"].cpu().numpy() for p in predictions]
        features = np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)
        problems = [
            (int(i), problem)
            for p in predictions
            for i, problem in zip(p["index"].tolist(), p["problems"], strict=True)
            if problem
        ]
        shares = [(index, features, problems)]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            shares = [None] * dist.get_world_size()
            dist.all_gather_object(shares, (index, features, problems))
        found = sorted(problem for share in shares for problem in share[2])
        if found:  # every process raises the first, in input order: the same one line
            name, _, message = found[0][1].partition("\t")
            kind = getattr(errors, name, errors.UserError)
            raise kind(message)
        if trainer.local_rank != 0:
            return
        merged = np.zeros((self.count, self.dim), np.float32)
        seen = np.zeros(self.count, bool)
        for share_index, share_features, _ in shares:
            merged[share_index.astype(np.int64)] = share_features
            seen[share_index.astype(np.int64)] = True
        if not seen.all():  # pragma: no cover - the sampler covers every index
            raise RuntimeError(f"{int((~seen).sum())} images were not embedded by any process")
        save_file({"features": merged}, str(Path(self.folder) / MERGED))


def predict_image_features(
    tower: ImageTower,
    paths: Sequence[str | Path],
    devices: int = 1,
    num_nodes: int = 1,
    accelerator: str = "auto",
    batch_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Tower features of ``paths`` (N x tower.dim, input order) over devices x num_nodes
    processes. With ``devices`` above 1 it starts processes, so its example is not run here::

        features = predict_image_features(tower, paths, devices=2, accelerator="cpu")
        features.shape == (len(paths), tower.dim)
    """
    if not paths:
        return np.zeros((0, tower.dim), np.float32)
    world = devices * num_nodes
    if batch_size is None:
        batch_size = 4 if accelerator == "cpu" or not torch.cuda.is_available() else 64
    with tempfile.TemporaryDirectory(prefix="artsim-predict-") as folder:
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            # spawn: only the prediction runs in the new processes, not the calling command
            strategy=_SpawnStrategy() if world > 1 else "auto",
            callbacks=[_MergeWriter(folder, len(paths), tower.dim)],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        loader = DataLoader(_ImageSet(paths, tower, max_pixels), batch_size=batch_size)
        try:
            trainer.predict(_TowerPredictor(tower), loader, return_predictions=False)
        except ProcessRaisedException as error:
            user_error = worker_user_error(error)
            if user_error is None:
                raise
            raise user_error from None
        return load_file(str(Path(folder) / MERGED))["features"]
