"""Checks for uploaded images, their clean re-encoding, thumbnails and a content descriptor (Pillow).

An upload is trusted only after it was decoded completely by us: the format comes from the bytes (never from
a file name or the client's content type), the pixel count is checked from the header before any pixel
buffer is allocated, and what gets stored is our own re-encoding of the pixels, so metadata that could leak
(EXIF with GPS, XMP, comments) and anything hidden after the image data never leave this module.

`decode_image` is the one decoder of untrusted image bytes (uploads now; generation inputs and training images
later): it decodes once, and makes the thumbnail and the descriptor from a reduced copy, so its peak memory is
about one pixel buffer (`decode_cost`, known from the header before any pixel is decoded). Callers that decode
concurrently share a memory budget for those costs (infra/decode_pool.py).
"""

from __future__ import annotations

import colorsys
import io
import math
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

from PIL import Image, ImageFile, ImageOps, JpegImagePlugin

_CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# Exceptions Pillow's decoders raise on damaged or truncated data.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)

THUMBNAIL_CONTENT_TYPE = "image/webp"
DESCRIPTOR_SIZE = 64


class MediaRejected(Exception):
    """The upload is refused; `status` is the HTTP answer (413 too large, 422 not a usable image)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class CheckedImage:
    width: int
    height: int
    format: str  # PNG, JPEG or WEBP
    content_type: str
    clean_bytes: bytes


@dataclass(frozen=True)
class DecodedImage:
    checked: CheckedImage
    thumbnail: bytes  # THUMBNAIL_CONTENT_TYPE
    descriptor: list[float]  # DESCRIPTOR_SIZE numbers (image_descriptor)


# Bytes a decoded pixel takes in Pillow's memory, by mode (every multi-band mode takes 4).
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
# Pixel buffers at the peak of a decode: the decoded one, plus a second while an EXIF orientation is applied; a
# WebP also passes through libwebp's own RGBA buffers while it is read and written. Peaks measured for 6300x6300
# images in a fresh process (tests/unit/test_media_memory.py checks some): PNG and JPEG 1.2 buffers, WebP 4.5.
_PEAK_BUFFERS = {"PNG": 2.0, "JPEG": 2.0, "MPO": 2.0, "WEBP": 5.0}
_PEAK_OVERHEAD = 8 * 1024 * 1024  # thumbnail, descriptor, encoder state


def decode_cost(data: bytes, *, max_bytes: int, max_pixels: int) -> int:
    """The most memory (bytes) `decode_image` takes for `data`, read from the header alone: no pixel buffer is
    allocated. Raises MediaRejected for what the header already shows (too large, not an image)."""
    _check_size(data, max_bytes)
    with _open(data, max_pixels) as image:
        pixels = image.width * image.height
        per_pixel = 4 if image.format == "WEBP" else _PIXEL_BYTES.get(image.mode, 4)
        return int(pixels * per_pixel * _PEAK_BUFFERS[str(image.format)]) + len(data) + _PEAK_OVERHEAD


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int, thumbnail_side: int = 256) -> DecodedImage:
    """Check, clean, thumbnail and describe untrusted image bytes, decoding them once (peak: `decode_cost`)."""
    image = _load(data, max_bytes, max_pixels)
    keep_icc = image.mode in ("RGB", "RGBA", "P")  # an ICC profile for CMYK or grey fits no RGB pixels
    icc_profile = image.info.get("icc_profile") if keep_icc else None
    checked, upright = _checked(image, data)
    preview = _displayable(_reduced(upright, 2 * thumbnail_side))
    del image, upright  # the full-size pixels go before the small work
    return DecodedImage(checked, _thumbnail_of(preview, thumbnail_side, icc_profile), _descriptor_of(preview))


def inspect_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    return _checked(_load(data, max_bytes, max_pixels), data)[0]


def _check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise MediaRejected(413, f"the file has {len(data)} bytes; at most {max_bytes} are accepted")


def _load(data: bytes, max_bytes: int, max_pixels: int) -> ImageFile.ImageFile:
    _check_size(data, max_bytes)
    image = _open(data, max_pixels)
    try:
        image.load()  # the whole file: a truncated or corrupt image fails here, not later in a projector
    except _DECODE_ERRORS as exc:
        raise MediaRejected(422, f"the image data is damaged or truncated ({exc})") from None
    return image


def _checked(image: ImageFile.ImageFile, data: bytes) -> tuple[CheckedImage, Image.Image]:
    """The clean re-encoding, and the upright pixels it was made from."""
    # MPO is the JPEG that phones write with a second picture (a depth or gain map) inside: keep the first.
    fmt = "JPEG" if image.format == "MPO" else str(image.format)
    upright, clean = _reencode(image, fmt, data)
    return CheckedImage(clean.width, clean.height, fmt, _CONTENT_TYPES[fmt], clean.data), upright


def _open(data: bytes, max_pixels: int) -> ImageFile.ImageFile:
    # Pillow warns (and over twice its limit raises) while opening a huge image; the warning becomes an error
    # too. catch_warnings swaps a process-wide filter list: two threads interleaving here can at worst leave
    # this same "error" filter installed, which is the policy we want anyway.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise MediaRejected(413, _too_many_pixels(str(exc), max_pixels)) from None
        except Image.UnidentifiedImageError:
            raise MediaRejected(422, "the file is not a PNG, JPEG or WebP image") from None
        except _DECODE_ERRORS as exc:
            raise MediaRejected(422, f"the image header is damaged ({exc})") from None
    width, height = image.size
    if width * height > max_pixels:  # from the header alone: no pixel buffer exists yet
        raise MediaRejected(413, f"the image has {width}x{height} pixels; at most {max_pixels} are accepted")
    if width == 0 or height == 0:
        raise MediaRejected(422, "the image is empty")
    if image.format != "MPO" and getattr(image, "n_frames", 1) > 1:
        raise MediaRejected(422, "animated images are not accepted")
    return image


def _too_many_pixels(pillow_message: str, max_pixels: int) -> str:
    """Our own 413 reason for Pillow's bomb check, which refuses before the size can be read: its pixel count,
    and the limit that applies (ours; Pillow's own only where AIDRAW_UPLOAD_MAX_PIXELS is set above it, since
    its warning is an error here)."""
    limit = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    found = re.search(r"\((\d+) pixels\)", pillow_message)
    pixels = f"{int(found.group(1))} pixels" if found else f"more than {limit} pixels"
    return f"the image has {pixels}; at most {limit} are accepted"


@dataclass(frozen=True)
class _Encoded:
    width: int
    height: int
    data: bytes


def _reencode(image: ImageFile.ImageFile, fmt: str, original: bytes) -> tuple[Image.Image, _Encoded]:
    icc_profile = image.info.get("icc_profile")
    transparency = image.info.get("transparency")
    # Turn the picture upright before the EXIF that says how is dropped, so it still looks the same. In place:
    # no second pixel buffer unless the picture really turns.
    upright = image
    try:
        ImageOps.exif_transpose(upright, in_place=True)
    except _DECODE_ERRORS as exc:
        raise MediaRejected(422, f"the image's EXIF metadata is damaged ({exc})") from None
    # Pillow's encoders copy some metadata from `info` by default (JPEG comments, for one): save with none
    # and hand over only what changes how the pixels look (the previews still read transparency from it).
    info, upright.info = upright.info, {}
    options: dict[str, object] = {}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if fmt == "JPEG":
        # The source's own quantisation tables and subsampling: re-encoding adds almost no loss.
        if qtables := getattr(image, "quantization", None):
            options.update(qtables=qtables, subsampling=JpegImagePlugin.get_sampling(image))
        else:
            options.update(quality=95)
    elif fmt == "PNG":
        if transparency is not None:
            options["transparency"] = transparency
    else:
        options.update(lossless=_webp_is_lossless(original), quality=90, method=4)
    out = io.BytesIO()
    upright.save(out, fmt, **options)
    upright.info = info
    return upright, _Encoded(upright.width, upright.height, out.getvalue())


def _webp_is_lossless(data: bytes) -> bool:
    """Whether the WebP's image chunk is VP8L (lossless): keep it lossless rather than degrade it."""
    pos = 12  # after "RIFF", size, "WEBP"
    while pos + 8 <= len(data):
        fourcc, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if fourcc in (b"VP8 ", b"VP8L"):
            return fourcc == b"VP8L"
        pos += 8 + size + (size & 1)
    return False


def _open_clean(checked: CheckedImage) -> ImageFile.ImageFile:
    return Image.open(io.BytesIO(checked.clean_bytes), formats=[checked.format])


def _displayable(image: Image.Image) -> Image.Image:
    """RGB or RGBA with 8 bits a channel, whatever the stored mode (16-bit grey, palette, CMYK)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _reduced(image: Image.Image, side: int) -> Image.Image:
    """A copy no more than about 2 x `side` on its longer side, made without a full-size intermediate: a box
    average by a whole factor (`Image.reduce`), or nearest pixels for the modes it cannot average."""
    factor = max(image.size) // (2 * side)
    if factor < 2:
        return image
    size = (max(1, image.width // factor), max(1, image.height // factor))
    if image.mode not in ("RGB", "RGBA", "L", "LA", "PA", "CMYK", "I", "F"):
        return image.resize(size, Image.Resampling.NEAREST)
    # In strips: Pillow averages RGBA and LA through a premultiplied full-size copy.
    reduced = Image.new(image.mode, size)
    reduced.info = dict(image.info)
    rows = 64 * factor
    for top in range(0, size[1] * factor, rows):
        strip = image.crop((0, top, size[0] * factor, min(top + rows, size[1] * factor)))
        reduced.paste(strip.reduce(factor), (0, top // factor))
    return reduced


def _thumbnail_of(preview: Image.Image, max_side: int, icc_profile: bytes | None) -> bytes:
    thumb = preview.copy()
    thumb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "WEBP", quality=80, method=4, **({"icc_profile": icc_profile} if icc_profile else {}))
    return out.getvalue()


def make_thumbnail(checked: CheckedImage, max_side: int = 256) -> bytes:
    """A WebP (THUMBNAIL_CONTENT_TYPE) no larger than max_side on either side, transparency kept."""
    with _open_clean(checked) as image:
        if checked.format == "JPEG":
            image.draft("RGB", (max_side, max_side))  # let libjpeg decode at 1/2..1/8 scale: much faster
        keep_icc = image.mode in ("RGB", "RGBA", "P")  # an ICC profile for CMYK or grey fits no RGB pixels
        icc_profile = image.info.get("icc_profile") if keep_icc else None
        preview = _displayable(_reduced(image, 2 * max_side))
    return _thumbnail_of(preview, max_side, icc_profile)


def image_descriptor(checked: CheckedImage) -> list[float]:
    """The descriptor (`_descriptor_of`) of a checked image."""
    with _open_clean(checked) as image:
        image.draft("RGB", (64, 64))
        return _descriptor_of(_displayable(_reduced(image, 256)))


def _descriptor_of(image: Image.Image) -> list[float]:
    """64 numbers, L2-normalised, for cosine similarity: 48 for colour (what), 16 for layout (where).

    Colour: a histogram over 32x32 pixels, 8 brightness bins for greys (their hue is noise) and 10 hues x 4
    brightness bins for colours, square-rooted so that a dominant colour does not drown the rest. Layout:
    4x4 grey levels relative to their mean, so a brighter copy of a picture still matches."""
    small = image.resize((32, 32), Image.Resampling.BOX).convert("RGBA")
    # Transparent areas count as white, as a viewer on a white page shows them.
    flat = Image.alpha_composite(Image.new("RGBA", small.size, (255, 255, 255, 255)), small).convert("RGB")

    colour = [0.0] * 48
    for r, g, b in flat.get_flattened_data():  # type: ignore[misc]
        hue, sat, val = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)
        if sat < 0.2 or val < 0.15:
            colour[min(int(val * 8), 7)] += 1
        else:
            colour[8 + min(int(hue * 10), 9) * 4 + min(int(val * 4), 3)] += 1
    colour = [math.sqrt(c) for c in colour]

    grey = flat.convert("L").resize((4, 4), Image.Resampling.BOX)
    layout = [float(v) for v in grey.get_flattened_data()]  # type: ignore[arg-type]
    mean = sum(layout) / len(layout)
    layout = [v - mean for v in layout]

    vector = _unit(colour, weight=math.sqrt(0.6)) + _unit(layout, weight=math.sqrt(0.4))
    return [round(v, 6) for v in _unit(vector)]


def _unit(values: list[float], weight: float = 1.0) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [weight * v / norm for v in values] if norm > 1e-9 else [0.0] * len(values)
