"""Open any image a user may hand us as a fully loaded RGB picture, or say plainly why not.

Every failure is an :class:`~artsim.errors.ImageError` whose message names the file and one clear
reason (missing, empty, not an image, truncated or corrupt, too large, unsupported colour mode).
The pixel limit is checked from the header, before any decoding, so a decompression bomb costs
nothing. Odd but valid modes (CMYK, 16-bit, grey, palette with transparency, alpha) are converted
to 8-bit RGB, with transparency flattened on white.
"""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from artsim.errors import ImageError

DEFAULT_MAX_PIXELS = 50_000_000

SUPPORTED_FORMATS = ("png", "jpeg", "gif", "webp", "bmp", "tiff")

# Modes we know how to turn into 8-bit RGB; anything else (F, LAB, HSV...) is refused by name
# rather than converted into something wrong.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "PA")
_PLAIN_MODES = ("RGB", "RGBX", "CMYK", "YCbCr", "L", "1", "P")
SUPPORTED_MODES = _PLAIN_MODES + _ALPHA_MODES + _SIXTEEN_BIT_MODES

_WHITE = (255, 255, 255)

# EXIF orientation -> the transpose that shows the picture the way the camera meant it.
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# ``warnings.catch_warnings`` swaps process-wide state, so header parsing (cheap: no decoding)
# is serialised while PIL's bomb warning is turned into an error; decoding runs in parallel.
_OPEN_LOCK = threading.Lock()


def sniff_image_format(data: bytes) -> str | None:
    """Name the image format from the first bytes (magic numbers), or ``None`` if not an image.

    >>> sniff_image_format(b"\\x89PNG\\r\\n\\x1a\\n...")
    'png'
    """
    head = bytes(data[:16])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    # TIFF and BigTIFF, little and big endian.
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    # "BM" alone is weak evidence, so also ask for a plausible header size.
    if head.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    return None


def _describe_content(head: bytes) -> str:
    """Say what a non-image file seems to be, so the user knows what went wrong."""
    stripped = head.lstrip()
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive"
    lowered = stripped[:64].lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if lowered.startswith(b"<?xml") or lowered.startswith(b"<svg"):
        return "XML/SVG text (vector images are not supported)"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "text"
    return "unrecognised binary data"


def _not_an_image(name: str, head: bytes) -> ImageError:
    formats = "/".join(fmt.upper() for fmt in SUPPORTED_FORMATS)
    return ImageError(
        f"{name}: not an image file (its content is {_describe_content(head)}, not {formats})"
    )


def _too_large(name: str, width: int, height: int, max_pixels: int) -> ImageError:
    return ImageError(
        f"{name}: image too large: {width}x{height} = {width * height:,} pixels is over the limit "
        f"of {max_pixels:,} (possible decompression bomb; raise --max-pixels if you trust the file)"
    )


def _open_header(source: BinaryIO, name: str, head: bytes, max_pixels: int) -> Image.Image:
    """Open lazily (header only) and refuse an oversized image before anything is decoded."""
    fmt = sniff_image_format(head)
    # Below PIL's own threshold its bomb warning can only fire for images we refuse anyway; above
    # it the user asked for big images on purpose, so the warning is noise.
    action = "error" if max_pixels <= (Image.MAX_IMAGE_PIXELS or max_pixels) else "ignore"
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter(action, Image.DecompressionBombWarning)
            image = Image.open(source)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(
            f"{name}: image too large (possible decompression bomb: {error})"
        ) from None
    except Image.UnidentifiedImageError:
        if fmt is None:
            raise _not_an_image(name, head) from None
        raise ImageError(
            f"{name}: truncated or corrupt {fmt.upper()} image (its header cannot be read)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        label = fmt.upper() if fmt else "image"
        raise ImageError(f"{name}: truncated or corrupt {label} image ({error})") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise ImageError(f"{name}: truncated or corrupt image (size {width}x{height})")
    if width * height > max_pixels:
        image.close()
        raise _too_large(name, width, height, max_pixels)
    if image.mode not in SUPPORTED_MODES:
        mode = image.mode
        image.close()
        raise ImageError(f"{name}: unsupported colour mode {mode!r}")
    return image


def _decode(image: Image.Image, name: str) -> None:
    """Decode every pixel of the (first) frame; truncation shows up only here."""
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise ImageError(
            f"{name}: image too large (possible decompression bomb: {error})"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as error:
        fmt = (image.format or "image").upper()
        raise ImageError(f"{name}: truncated or corrupt {fmt} image ({error})") from None


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    """Scale 16-bit grey to 8 bits (65535 -> 255), where PIL's own convert would clip."""
    values = np.asarray(image).astype(np.float64)
    scaled = np.round(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")


def _flatten_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert a loaded image of any supported mode to a new 8-bit RGB image."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        # A 16-bit colour key (PNG tRNS) is rare enough to ignore: the picture stays correct.
        return _sixteen_bit_to_l(image).convert("RGB")
    # Palette, grey and RGB images can carry a transparent colour key instead of an alpha band.
    if mode in _ALPHA_MODES or "transparency" in image.info:
        return _flatten_on_white(image)
    if mode == "RGB":
        return image.copy()
    return image.convert("RGB")


def _checked_rgb(image: Image.Image, name: str, mode: str) -> Image.Image:
    """:func:`_to_rgb`, a failure an :class:`ImageError` naming the file's colour ``mode``."""
    try:
        return _to_rgb(image)
    except (ValueError, OSError) as error:
        raise ImageError(f"{name}: cannot convert colour mode {mode!r} to RGB ({error})") from None


def _rgb_oriented(image: Image.Image, name: str) -> Image.Image:
    return _apply_orientation(image, _checked_rgb(image, name, image.mode))


def _apply_orientation(image: Image.Image, rgb: Image.Image) -> Image.Image:
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block must not make a readable picture unusable
        return rgb
    method = _ORIENTATION.get(orientation)
    return rgb.transpose(method) if method is not None else rgb


def _read_head(path: Path, name: str) -> bytes:
    """Read the first bytes of a file, turning every way of not being readable into a reason."""
    try:
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image file")
        size = path.stat().st_size
        if size == 0:
            raise ImageError(f"{name}: empty file (0 bytes)")
        with path.open("rb") as handle:
            return handle.read(64)
    except FileNotFoundError:
        raise ImageError(f"{name}: file not found") from None
    except PermissionError:
        raise ImageError(f"{name}: cannot read the file (permission denied)") from None
    except OSError as error:
        raise ImageError(f"{name}: cannot read the file ({error.strerror or error})") from None


def _load_path(path: Path, name: str, max_pixels: int, convert: bool) -> Image.Image | None:
    head = _read_head(path, name)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise ImageError(f"{name}: cannot read the file ({error.strerror or error})") from None
    with handle, _open_header(handle, name, head, max_pixels) as image:
        _decode(image, name)
        if not convert:
            return None
        return _rgb_oriented(image, name)


def check_image(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, *, name: str | None = None
) -> None:
    """Raise :class:`ImageError` with a plain reason unless ``path`` is a usable image.

    The header is checked first (size against ``max_pixels``, colour mode), then every pixel is
    decoded, because truncated files only fail while decoding. ``name`` is how messages call the
    file (default: the path), e.g. the relative path a manifest gives.
    """
    _load_path(Path(path), str(path) if name is None else name, max_pixels, convert=False)


def check_picture(image: Image.Image, name: str = "image") -> Image.Image:
    """``image`` itself, unless it has no pixels (a 0-wide or 0-high picture): then an
    :class:`ImageError` naming it."""
    if image.width < 1 or image.height < 1:
        raise ImageError(
            f"{name}: a picture of {image.width}x{image.height} pixels has nothing to compare"
        )
    return image


# A picture is "uninformative" when, looked at on a 128 x 128 grid, fewer than 0.1% of its cells
# (16 of 16,384) differ from its dominant colour by more than 12 levels in some channel: a plain
# or almost plain picture (a white upload; an original whose drawing vanishes once transparency
# is flattened on white). Every such picture is close to every other (a cosine near 1), so a
# match says nothing. On the demo's 1600 originals: 2 are fully white, the next lowest (a tiny
# drawing on a large canvas) have 0.26%.
CONTENT_GRID = 128
CONTENT_DELTA = 12
MIN_CONTENT_SHARE = 0.001


def content_share(image: Image.Image) -> float:
    """The share of ``image`` (on a :data:`CONTENT_GRID` square grid) whose colour differs from
    its dominant colour by more than :data:`CONTENT_DELTA` levels in some channel."""
    grid = image.convert("RGB").resize((CONTENT_GRID, CONTENT_GRID), Image.Resampling.BOX)
    pixels = np.asarray(grid, dtype=np.int16).reshape(-1, 3)
    bins = pixels // 8
    codes = (bins[:, 0] << 10) | (bins[:, 1] << 5) | bins[:, 2]
    dominant = np.bincount(codes, minlength=1 << 15).argmax()
    centre = np.array([(dominant >> 10) & 31, (dominant >> 5) & 31, dominant & 31]) * 8 + 4
    return float((np.abs(pixels - centre).max(axis=1) > CONTENT_DELTA).mean())


def uninformative_problem(image: Image.Image, name: str = "image") -> str | None:
    """Why ``image`` cannot be compared (almost one colour: :data:`MIN_CONTENT_SHARE`), or
    ``None``."""
    share = content_share(image)
    if share >= MIN_CONTENT_SHARE:
        return None
    return (
        f"{name}: almost nothing but one colour ({share:.2%} of the picture differs from it): "
        "every such picture matches every other, so there is nothing to compare; send a "
        "picture with content"
    )


def load_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Load an image file as a fully decoded 8-bit RGB image (alpha flattened on white).

    EXIF orientation is applied. Raises :class:`ImageError` with a plain reason otherwise.
    """
    image = _load_path(Path(path), str(path), max_pixels, convert=True)
    assert image is not None
    return image


def image_size_bytes(
    data: bytes, name: str = "upload", max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[int, int]:
    """(width, height) of image bytes from the header alone, nothing decoded.

    Raises :class:`ImageError` like :func:`load_rgb_bytes` for a non-image, a corrupt header or
    an image over ``max_pixels``.
    """
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    with _open_header(io.BytesIO(data), name, bytes(data[:64]), max_pixels) as image:
        return image.size


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    """A copy of a loaded image shrunk by an integer factor (box average) so that its longest
    side is at most about ``max_side``; the image itself when it is small enough already."""
    factor = -(-max(image.size) // max_side)  # ceiling division
    if factor <= 1:
        return image
    try:
        return image.reduce(factor)
    except (ValueError, NotImplementedError):  # modes reduce() does not handle (P, 1, I;16)
        return image


def load_rgb_bytes(
    data: bytes,
    name: str = "upload",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    *,
    max_side: int | None = None,
) -> Image.Image:
    """Load image bytes (e.g. an upload) as RGB; ``name`` is how error messages call them.

    With ``max_side`` an image whose longest side is over it is decoded at reduced size where
    the format allows (JPEG: ``Image.draft``) and shrunk by an integer factor before it is
    converted, so a large picture never exists as several full-size copies. Images within
    ``max_side`` are loaded exactly as without it.
    """
    if not data:
        raise ImageError(f"{name}: empty file (0 bytes)")
    head = bytes(data[:64])
    with _open_header(io.BytesIO(data), name, head, max_pixels) as image:
        if max_side is not None and max(image.size) > max_side and image.format == "JPEG":
            image.draft(image.mode, (max_side, max_side))
        _decode(image, name)
        if max_side is None or max(image.size) <= max_side:
            return _rgb_oriented(image, name)
        small = _reduced(image, max_side)
        try:
            rgb = _checked_rgb(small, name, image.mode)
        finally:
            if small is not image:
                small.close()
        return _apply_orientation(image, rgb)
