"""Every way an image file can be unusable has its own reason; odd valid modes become right RGB."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from artsim.data.pictures.images import (
    DEFAULT_MAX_PIXELS,
    check_image,
    load_rgb,
    load_rgb_bytes,
    sniff_image_format,
)
from artsim.errors import ImageError


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _noise(size: int = 64, seed: int = 0) -> Image.Image:
    # Noise does not compress, so cutting the file really removes pixel data.
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a size, with no pixel data: what a decompression bomb shows."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def _reason(path: Path, **kwargs) -> str:
    with pytest.raises(ImageError) as caught:
        check_image(path, **kwargs)
    return str(caught.value)


# ---------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path: Path) -> None:
    assert "file not found" in _reason(tmp_path / "nope.png")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "dir.png").mkdir()
    assert "is a folder" in _reason(tmp_path / "dir.png")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "empty file (0 bytes)" in _reason(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image(tmp_path: Path, fmt: str) -> None:
    buffer = io.BytesIO()
    _noise().save(buffer, format=fmt)
    data = buffer.getvalue()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    assert f"truncated or corrupt {fmt} image" in _reason(path)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_rgb(path)


def test_corrupt_header(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10)
    assert "truncated or corrupt PNG image" in _reason(path)


@pytest.mark.parametrize(
    ("content", "described"),
    [
        (b"id,group\n1,2\n", "its content is text"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "an HTML page"),
        (b"%PDF-1.7 ...", "a PDF document"),
        (bytes(range(256)) * 2, "unrecognised binary data"),
    ],
)
def test_not_an_image_with_image_extension(tmp_path: Path, content: bytes, described: str) -> None:
    path = tmp_path / "fake.jpg"
    path.write_bytes(content)
    reason = _reason(path)
    assert "not an image file" in reason
    assert described in reason


def test_unsupported_mode(tmp_path: Path) -> None:
    path = tmp_path / "float.tiff"
    Image.fromarray(np.zeros((4, 4), dtype=np.float32), mode="F").save(path)
    assert "unsupported colour mode 'F'" in _reason(path)


# ---------------------------------------------------------------------------- pixel limit


def test_pixel_limit_checked_before_decoding(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)

    def no_decoding(self):
        raise AssertionError("the image was decoded before its size was checked")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    reason = _reason(path, max_pixels=5_000)
    assert "image too large: 100x100 = 10,000 pixels is over the limit of 5,000" in reason
    assert "decompression bomb" in reason


def test_pil_decompression_bomb_error_becomes_image_error(tmp_path: Path) -> None:
    # 20000 x 20000 is over twice PIL's own limit: PIL refuses it while opening.
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(20_000, 20_000))
    assert "too large" in _reason(path, max_pixels=10**12)
    with pytest.raises(ImageError, match="too large"):
        load_rgb_bytes(path.read_bytes(), max_pixels=10**12)


def test_pil_decompression_bomb_warning_becomes_image_error() -> None:
    # Between PIL's limit and twice it PIL only warns; we refuse, with the default limit.
    side = int((Image.MAX_IMAGE_PIXELS * 1.2) ** 0.5)
    with pytest.raises(ImageError, match="too large"):
        load_rgb_bytes(_png_header_only(side, side), max_pixels=DEFAULT_MAX_PIXELS)


# ---------------------------------------------------------------------------- odd valid modes


def _roundtrip(tmp_path: Path, image: Image.Image, name: str = "x.png") -> Image.Image:
    path = tmp_path / name
    image.save(path)
    loaded = load_rgb(path)
    assert loaded.mode == "RGB"
    assert loaded.size == image.size
    return loaded


def test_rgb_unchanged(tmp_path: Path) -> None:
    image = _noise(8)
    loaded = _roundtrip(tmp_path, image)
    assert np.array_equal(np.asarray(loaded), np.asarray(image))


def test_cmyk(tmp_path: Path) -> None:
    pixels = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 0, 0, 255]]], dtype=np.uint8)
    loaded = _roundtrip(tmp_path, Image.fromarray(pixels, mode="CMYK"), "cmyk.tiff")
    assert [loaded.getpixel((x, 0)) for x in range(3)] == [
        (255, 255, 255),
        (0, 255, 255),
        (0, 0, 0),
    ]


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 100, 65535, 1000]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    loaded = _roundtrip(tmp_path, image)
    grey = [loaded.getpixel((x, 0)) for x in range(4)]
    assert grey == [(0, 0, 0), (100, 100, 100), (255, 255, 255), (4, 4, 4)]


def test_grey(tmp_path: Path) -> None:
    loaded = _roundtrip(tmp_path, Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8)))
    assert [loaded.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (77, 77, 77), (255,) * 3]


def test_grey_with_alpha_flattened_on_white(tmp_path: Path) -> None:
    pixels = np.array([[[100, 0], [100, 255]]], dtype=np.uint8)
    loaded = _roundtrip(tmp_path, Image.fromarray(pixels, mode="LA"))
    assert loaded.getpixel((0, 0)) == (255, 255, 255)
    assert loaded.getpixel((1, 0)) == (100, 100, 100)


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    loaded = _roundtrip(tmp_path, image)
    assert loaded.getpixel((0, 0)) == (255, 255, 255)  # transparent red becomes white
    assert loaded.getpixel((1, 0)) == (0, 0, 255)


def test_rgba_flattened_on_white(tmp_path: Path) -> None:
    pixels = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 0, 128]]], dtype=np.uint8)
    loaded = _roundtrip(tmp_path, Image.fromarray(pixels, mode="RGBA"))
    assert loaded.getpixel((0, 0)) == (255, 255, 255)
    assert loaded.getpixel((1, 0)) == (255, 0, 0)
    assert all(abs(channel - 127) <= 1 for channel in loaded.getpixel((2, 0)))


def test_exif_orientation_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (4, 2), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown as 2 x 4
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif)
    assert load_rgb(path).size == (2, 4)


def test_loaded_image_does_not_need_the_file(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    _noise(8).save(path)
    loaded = load_rgb(path)
    path.unlink()
    assert loaded.getpixel((0, 0)) is not None


# ---------------------------------------------------------------------------- bytes


def test_load_rgb_bytes() -> None:
    image = _noise(8)
    loaded = load_rgb_bytes(_png_bytes(image))
    assert np.array_equal(np.asarray(loaded), np.asarray(image))


def test_load_rgb_bytes_reasons_name_the_upload() -> None:
    with pytest.raises(ImageError, match=r"^photo\.png: empty file \(0 bytes\)"):
        load_rgb_bytes(b"", name="photo.png")
    with pytest.raises(ImageError, match=r"^upload: not an image file"):
        load_rgb_bytes(b"hello world, this is text")
    with pytest.raises(ImageError, match="truncated or corrupt PNG"):
        data = _png_bytes(_noise())
        load_rgb_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("PNG", "png"),
        ("JPEG", "jpeg"),
        ("GIF", "gif"),
        ("WEBP", "webp"),
        ("BMP", "bmp"),
        ("TIFF", "tiff"),
    ],
)
def test_sniff_image_format(fmt: str, expected: str) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format=fmt)
    assert sniff_image_format(buffer.getvalue()) == expected


@pytest.mark.parametrize("data", [b"", b"hello", b"BM", b"%PDF-1.4", b"RIFF\x00\x00\x00\x00WAVE"])
def test_sniff_non_images(data: bytes) -> None:
    assert sniff_image_format(data) is None
