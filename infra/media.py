"""Checks for uploaded images, their clean re-encoding, thumbnails and a content descriptor (Pillow).

An upload is trusted only after it was decoded completely by us: the format comes from the bytes (never from
a file name or the client's content type), the pixel count is checked from the header before any pixel
buffer is allocated, and what gets stored is our own re-encoding of the pixels, so metadata that could leak
(EXIF with GPS, XMP, comments) and anything hidden after the image data never leave this module.
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


def inspect_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    if len(data) > max_bytes:
        raise MediaRejected(413, f"the file has {len(data)} bytes; at most {max_bytes} are accepted")
    image = _open(data, max_pixels)
    try:
        image.load()  # the whole file: a truncated or corrupt image fails here, not later in a projector
    except _DECODE_ERRORS as exc:
        raise MediaRejected(422, f"the image data is damaged or truncated ({exc})") from None
    # MPO is the JPEG that phones write with a second picture (a depth or gain map) inside: keep the first.
    fmt = "JPEG" if image.format == "MPO" else str(image.format)
    clean = _reencode(image, fmt, data)
    return CheckedImage(clean.width, clean.height, fmt, _CONTENT_TYPES[fmt], clean.data)


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


def _reencode(image: ImageFile.ImageFile, fmt: str, original: bytes) -> _Encoded:
    icc_profile = image.info.get("icc_profile")
    transparency = image.info.get("transparency")
    # Turn the picture upright before the EXIF that says how is dropped, so it still looks the same.
    try:
        upright = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS as exc:
        raise MediaRejected(422, f"the image's EXIF metadata is damaged ({exc})") from None
    # Pillow's encoders copy some metadata from `info` by default (JPEG comments, for one): start from none
    # and hand over only what changes how the pixels look.
    upright.info = {}
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
    return _Encoded(upright.width, upright.height, out.getvalue())


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


def make_thumbnail(checked: CheckedImage, max_side: int = 256) -> bytes:
    """A WebP (THUMBNAIL_CONTENT_TYPE) no larger than max_side on either side, transparency kept."""
    with _open_clean(checked) as image:
        if checked.format == "JPEG":
            image.draft("RGB", (max_side, max_side))  # let libjpeg decode at 1/2..1/8 scale: much faster
        keep_icc = image.mode in ("RGB", "RGBA", "P")  # an ICC profile for CMYK or grey fits no RGB pixels
        icc_profile = image.info.get("icc_profile") if keep_icc else None
        thumb = _displayable(image)
    thumb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "WEBP", quality=80, method=4, **({"icc_profile": icc_profile} if icc_profile else {}))
    return out.getvalue()


def image_descriptor(checked: CheckedImage) -> list[float]:
    """64 numbers, L2-normalised, for cosine similarity: 48 for colour (what), 16 for layout (where).

    Colour: a histogram over 32x32 pixels, 8 brightness bins for greys (their hue is noise) and 10 hues x 4
    brightness bins for colours, square-rooted so that a dominant colour does not drown the rest. Layout:
    4x4 grey levels relative to their mean, so a brighter copy of a picture still matches."""
    with _open_clean(checked) as image:
        image.draft("RGB", (64, 64))
        rgba = _displayable(image).convert("RGBA")
    # Transparent areas count as white, as a viewer on a white page shows them.
    flat = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")

    colour = [0.0] * 48
    small = flat.resize((32, 32), Image.Resampling.BOX)
    for r, g, b in small.get_flattened_data():  # type: ignore[misc]
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
