"""Uploaded image checks, cleaning, thumbnails and descriptors, on images the tests draw with Pillow."""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from collections.abc import Callable

import pytest
from PIL import ExifTags, Image, ImageCms, ImageDraw, ImageFile, PngImagePlugin

from infra.media import (
    DESCRIPTOR_SIZE,
    THUMBNAIL_CONTENT_TYPE,
    CheckedImage,
    MediaRejected,
    image_descriptor,
    inspect_upload,
    make_thumbnail,
)

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 40_000_000}
SECRET = "Secret-Location-Marker"


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def scene(width: int = 320, height: int = 200, sun: tuple[int, int, int] = (250, 210, 40)) -> Image.Image:
    """A small landscape: sky gradient, sun, hill; smooth enough to survive JPEG."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line([(0, y), (width, y)], fill=(40 + y // 3, 90 + y // 4, 230 - y // 3))
    draw.ellipse([width * 0.65, height * 0.1, width * 0.85, height * 0.4], fill=sun)
    draw.polygon([(0, height), (0, height * 0.7), (width * 0.5, height * 0.55), (width, height * 0.75),
                  (width, height)], fill=(40, 140, 50))
    return image


def checkerboard(width: int = 320, height: int = 200) -> Image.Image:
    image = Image.new("RGB", (width, height), (240, 220, 20))
    draw = ImageDraw.Draw(image)
    for x in range(0, width, 40):
        for y in range((x // 40 % 2) * 40, height, 80):
            draw.rectangle([x, y, x + 39, y + 39], fill=(120, 20, 140))
    return image


def noise(width: int = 200, height: int = 200) -> Image.Image:
    return Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = SECRET
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 3.25)
    return exif


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header, with only a little pixel data behind it."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + chunk(b"IEND", b""))


def real_png_bomb(side: int, colour_type: int = 0) -> bytes:
    """A complete, valid PNG of side x side black pixels (grey; 2: RGB, 6: RGBA): a small file that inflates to
    side**2 bytes per channel."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    packer = zlib.compressobj(9)
    row = b"\0" * (side * {0: 1, 2: 3, 6: 4}[colour_type] + 1)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture
def no_pixel_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if Pillow starts to allocate the pixel buffer of an opened file."""
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError(f"a {self.size} pixel buffer was allocated")

    monkeypatch.setattr(ImageFile.ImageFile, "load_prepare", refuse)


def reject_status(data: bytes, **limits: int) -> int:
    with pytest.raises(MediaRejected) as caught:
        inspect_upload(data, **{**LIMITS, **limits})
    assert caught.value.reason
    return caught.value.status


def reopen(checked: CheckedImage) -> Image.Image:
    image = Image.open(io.BytesIO(checked.clean_bytes))
    image.load()
    return image


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


# Acceptance.

@pytest.mark.parametrize(("fmt", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"),
                                                   ("WEBP", "image/webp")])
def test_png_jpeg_and_webp_are_accepted_by_content(fmt: str, content_type: str) -> None:
    checked = inspect_upload(encode(scene(320, 200), fmt), **LIMITS)
    assert (checked.format, checked.content_type) == (fmt, content_type)
    assert (checked.width, checked.height) == (320, 200)
    image = reopen(checked)
    assert (image.format, image.size) == (fmt, (320, 200))


def test_lossless_sources_keep_every_pixel() -> None:
    source = noise(64, 48)
    for data in (encode(source, "PNG"), encode(source, "WEBP", lossless=True)):
        assert reopen(inspect_upload(data, **LIMITS)).convert("RGB").tobytes() == source.tobytes()


def test_jpeg_is_re_encoded_with_its_own_quality() -> None:
    source = scene()
    data = encode(source, "JPEG", quality=90)
    clean = reopen(inspect_upload(data, **LIMITS))
    original = Image.open(io.BytesIO(data)).convert("RGB")
    diff = sum(abs(a - b) for a, b in zip(original.tobytes(), clean.convert("RGB").tobytes(), strict=True))
    assert diff / len(original.tobytes()) < 1.0


def test_palette_png_keeps_its_transparency() -> None:
    source = Image.new("P", (30, 30), 0)
    source.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    ImageDraw.Draw(source).rectangle([10, 10, 19, 19], fill=1)
    clean = reopen(inspect_upload(encode(source, "PNG", transparency=0), **LIMITS))
    rgba = clean.convert("RGBA")
    assert rgba.getpixel((0, 0))[3] == 0  # type: ignore[index]
    assert rgba.getpixel((15, 15)) == (0, 0, 255, 255)


@pytest.mark.parametrize(("fmt", "mode"), [("PNG", "1"), ("PNG", "L"), ("PNG", "LA"), ("PNG", "RGBA"),
                                         ("PNG", "P"), ("JPEG", "L"), ("JPEG", "CMYK"), ("WEBP", "RGBA")])
def test_every_mode_a_format_stores_comes_back_looking_the_same(fmt: str, mode: str) -> None:
    source = scene(64, 40).convert("RGBA")
    ImageDraw.Draw(source).rectangle([0, 0, 15, 15], fill=(0, 0, 0, 0))
    source = source.convert(mode)
    options = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
    data = encode(source, fmt, **options)
    clean = reopen(inspect_upload(data, **LIMITS))
    assert clean.mode == Image.open(io.BytesIO(data)).mode
    expected = Image.open(io.BytesIO(data)).convert("RGBA").tobytes()
    got = clean.convert("RGBA").tobytes()
    if fmt == "JPEG":  # re-encoded with the source's tables: chroma edges move a little, nothing else
        assert sum(abs(a - b) for a, b in zip(expected, got, strict=True)) / len(got) < 2.0
    else:
        assert got == expected


def test_phone_mpo_jpeg_is_accepted_as_its_primary_picture() -> None:
    out = io.BytesIO()
    scene().save(out, "MPO", save_all=True, append_images=[checkerboard()])
    checked = inspect_upload(out.getvalue(), **LIMITS)
    assert (checked.format, checked.content_type) == ("JPEG", "image/jpeg")
    clean = reopen(checked)
    assert clean.format == "JPEG"
    assert getattr(clean, "n_frames", 1) == 1


# Rejection.

@pytest.mark.parametrize("data", [
    b"",
    b"hello, I am a text file renamed to picture.png\n",
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    b"\x89PNG\r\n\x1a\n",  # a PNG signature and nothing else
], ids=["empty", "text", "svg", "signature-only"])
def test_files_that_are_not_images_are_unprocessable(data: bytes) -> None:
    assert reject_status(data) == 422


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO"])
def test_other_image_formats_are_unprocessable(fmt: str) -> None:
    assert reject_status(encode(scene(64, 64), fmt)) == 422


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_images_are_unprocessable(fmt: str) -> None:
    data = encode(noise(), fmt)
    assert reject_status(data[: len(data) // 2]) == 422


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_images_are_unprocessable(fmt: str) -> None:
    data = encode(scene(), fmt, save_all=True, append_images=[checkerboard()], duration=100)
    assert reject_status(data) == 422


def test_too_many_bytes_is_too_large_before_decoding(no_pixel_buffers: None) -> None:
    data = encode(noise(), "PNG")
    assert reject_status(data, max_bytes=len(data) - 1) == 413


def test_real_decompression_bomb_is_refused_without_allocating_its_pixels(no_pixel_buffers: None) -> None:
    bomb = real_png_bomb(9_000)  # 81 megapixels of black, under Pillow's own bomb limit: our check refuses
    assert len(bomb) < 200_000
    assert reject_status(bomb, max_pixels=10_000_000) == 413


@pytest.mark.parametrize("side", [10_000, 20_000], ids=["over-pillow-warning", "over-pillow-error"])
def test_pillow_bomb_warning_and_error_become_rejections(no_pixel_buffers: None, side: int) -> None:
    # Even with our own limit raised past Pillow's, its bomb check (a warning, then an error) still refuses.
    assert reject_status(png_header(side, side), max_pixels=10**12) == 413


def reject_reason(data: bytes, **limits: int) -> str:
    with pytest.raises(MediaRejected) as caught:
        inspect_upload(data, **{**LIMITS, **limits})
    assert caught.value.status == 413
    return caught.value.reason


@pytest.mark.parametrize("side", [7_000, 10_000, 20_000], ids=["ours", "over-pillow-warning", "over-pillow-error"])
def test_too_many_pixels_names_our_limit_not_pillows(no_pixel_buffers: None, side: int) -> None:
    reason = reject_reason(png_header(side, side))
    assert "at most 40000000 are accepted" in reason, reason
    assert str(side * side) in reason.replace(f"{side}x{side}", str(side * side)), reason
    assert "decompression bomb" not in reason and str(Image.MAX_IMAGE_PIXELS) not in reason, reason


def test_a_limit_above_pillows_reports_pillows_as_the_one_that_applies(no_pixel_buffers: None) -> None:
    reason = reject_reason(png_header(20_000, 20_000), max_pixels=10**12)
    assert f"at most {Image.MAX_IMAGE_PIXELS} are accepted" in reason, reason


def test_pixel_limit_counts_width_times_height(no_pixel_buffers: None) -> None:
    assert reject_status(png_header(5000, 2001), max_pixels=10_000_000) == 413


# Cleaning.

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_cleaning_removes_exif_gps_xmp_and_comments(fmt: str) -> None:
    exif = exif_with_gps()
    xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/">{SECRET}</x:xmpmeta>'.encode()
    if fmt == "JPEG":
        data = encode(scene(), fmt, exif=exif, xmp=xmp, comment=SECRET.encode())
    elif fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", SECRET)
        text.add_itxt("XML:com.adobe.xmp", xmp.decode())
        data = encode(scene(), fmt, exif=exif, pnginfo=text)
    else:
        data = encode(scene(), fmt, exif=exif, xmp=xmp)
    original = Image.open(io.BytesIO(data))
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo), "the test image must carry GPS to begin with"
    assert SECRET.encode() in data

    checked = inspect_upload(data, **LIMITS)
    clean = reopen(checked)
    assert not clean.getexif()
    assert not clean.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert not {"exif", "xmp", "comment", "Comment", "XML:com.adobe.xmp"} & set(clean.info)
    assert SECRET.encode() not in checked.clean_bytes
    assert b"Exif" not in checked.clean_bytes


def test_cleaning_drops_data_appended_after_the_image() -> None:
    data = encode(scene(), "JPEG") + b"PK\x03\x04 a zip archive riding along " + SECRET.encode()
    assert SECRET.encode() not in inspect_upload(data, **LIMITS).clean_bytes


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_orientation_is_applied_before_it_is_dropped(fmt: str) -> None:
    # Stored 40 wide: red left half, blue right half. Orientation 6 = shown turned 90 degrees clockwise.
    stored = Image.new("RGB", (40, 20), (220, 20, 20))
    ImageDraw.Draw(stored).rectangle([20, 0, 39, 19], fill=(20, 20, 220))
    checked = inspect_upload(encode(stored, fmt, exif=exif_with_gps(orientation=6)), **LIMITS)
    assert (checked.width, checked.height) == (20, 40)
    clean = reopen(checked).convert("RGB")
    assert clean.size == (20, 40)
    top, bottom = clean.getpixel((10, 5)), clean.getpixel((10, 34))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 150 and top[2] < 90  # red on top
    assert bottom[2] > 150 and bottom[0] < 90  # blue below
    assert ExifTags.Base.Orientation not in clean.getexif()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_cleaning_keeps_the_icc_profile(fmt: str) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    checked = inspect_upload(encode(scene(), fmt, icc_profile=icc, exif=exif_with_gps()), **LIMITS)
    assert reopen(checked).info.get("icc_profile") == icc


# Thumbnails.

def test_thumbnail_fits_max_side_keeps_aspect_and_is_webp() -> None:
    checked = inspect_upload(encode(scene(1000, 500), "JPEG"), **LIMITS)
    thumb = Image.open(io.BytesIO(make_thumbnail(checked, max_side=256)))
    assert THUMBNAIL_CONTENT_TYPE == "image/webp"
    assert (thumb.format, thumb.size) == ("WEBP", (256, 128))


def test_thumbnail_keeps_transparency_and_never_enlarges() -> None:
    source = Image.new("RGBA", (50, 30), (0, 0, 0, 0))
    ImageDraw.Draw(source).ellipse([10, 5, 40, 25], fill=(200, 30, 30, 255))
    thumb = Image.open(io.BytesIO(make_thumbnail(inspect_upload(encode(source, "PNG"), **LIMITS))))
    assert thumb.size == (50, 30)
    assert thumb.mode == "RGBA"
    assert thumb.getpixel((0, 0))[3] == 0  # type: ignore[index]


def test_thumbnail_of_a_16_bit_grey_png_shows_its_grey_levels() -> None:
    ramp = b"".join(struct.pack("<H", x * 65535 // 99) for _ in range(20) for x in range(100))
    source = Image.frombytes("I;16", (100, 20), ramp)
    thumb = Image.open(io.BytesIO(make_thumbnail(inspect_upload(encode(source, "PNG"), **LIMITS))))
    low, high = thumb.convert("L").getextrema()
    assert isinstance(low, int) and isinstance(high, int)
    assert low < 20 and high > 230


# Descriptors.

def descriptor_of(image: Image.Image, fmt: str = "PNG", **options: object) -> list[float]:
    return image_descriptor(inspect_upload(encode(image, fmt, **options), **LIMITS))


def test_descriptor_is_a_deterministic_unit_vector() -> None:
    first, second = descriptor_of(scene()), descriptor_of(scene())
    assert len(first) == DESCRIPTOR_SIZE
    assert first == second
    assert math.isclose(math.sqrt(sum(v * v for v in first)), 1.0, abs_tol=1e-5)


def test_descriptor_of_a_flat_colour_is_finite() -> None:
    vector = descriptor_of(Image.new("RGB", (40, 40), (128, 128, 128)))
    assert all(math.isfinite(v) for v in vector)
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, abs_tol=1e-5)


def test_near_identical_images_have_close_descriptors() -> None:
    original = descriptor_of(scene(640, 400))
    recompressed_smaller = descriptor_of(scene(640, 400).resize((480, 300)), "JPEG", quality=40)
    assert cosine(original, recompressed_smaller) > 0.95


@pytest.mark.parametrize("other", [lambda: checkerboard(640, 400), lambda: noise(640, 400)],
                         ids=["other-picture", "noise"])
def test_different_images_have_distant_descriptors(other: Callable[[], Image.Image]) -> None:
    assert cosine(descriptor_of(scene(640, 400)), descriptor_of(other())) < 0.5


def test_layout_counts_same_colours_elsewhere_are_less_similar_than_a_copy() -> None:
    original = descriptor_of(scene(640, 400))
    copy = descriptor_of(scene(640, 400), "JPEG", quality=60)
    upside_down = descriptor_of(scene(640, 400).transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    assert cosine(original, upside_down) < cosine(original, copy) - 0.1
