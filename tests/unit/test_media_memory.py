"""What one decode of an upload costs in memory: `decode_cost` from the header, and the real peak, measured by
the kernel (peak RSS) in a process of its own so that nothing else in the test run blurs it.

The bomb is the one the hardening issue reported: a 113 KB PNG of 6300x6300 black pixels. Before, decoding it
grew a process by about 600 MB (the pixels decoded three times over, each converted once more); now by about one
pixel buffer (159 MB), and `decode_cost` (2 buffers) bounds it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from infra.media import DESCRIPTOR_SIZE, decode_cost, decode_image, image_descriptor, make_thumbnail
from tests.unit.test_media import LIMITS, encode, real_png_bomb, scene

MIB = 1024 * 1024
_MEASURE = """
import json, resource, sys
from infra.media import decode_cost, decode_image
data = open(sys.argv[1], "rb").read()
limits = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 40_000_000}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
decode_image(data, **limits)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth": (after - before) * 1024, "cost": decode_cost(data, **limits)}))
"""


def peak_growth(data: bytes) -> tuple[int, int]:
    """(peak RSS growth while `decode_image` ran, `decode_cost`), bytes, in a fresh interpreter."""
    with tempfile.NamedTemporaryFile() as file:
        file.write(data)
        file.flush()
        done = subprocess.run([sys.executable, "-c", _MEASURE, file.name], capture_output=True, text=True,
                              timeout=120, check=True, cwd=Path(__file__).parents[2])
    figures = json.loads(done.stdout)
    return figures["growth"], figures["cost"]


def test_a_webp_stays_within_its_cost() -> None:
    bomb = encode(Image.new("RGB", (3000, 3000), "white"), "WEBP", lossless=True)
    assert len(bomb) < 10_000
    growth, cost = peak_growth(bomb)
    assert growth <= cost, (growth / MIB, cost / MIB)


@pytest.mark.parametrize(("side", "colour_type"), [(6300, 2), (4000, 6)], ids=["rgb-6300", "rgba-4000"])
def test_a_png_bomb_grows_the_process_by_about_one_pixel_buffer(side: int, colour_type: int) -> None:
    bomb = real_png_bomb(side, colour_type)
    assert len(bomb) < 200_000
    growth, cost = peak_growth(bomb)
    buffer = side * side * 4  # Pillow keeps RGB and RGBA at 4 bytes a pixel
    assert growth <= cost, (growth / MIB, cost / MIB)
    assert growth < 1.5 * buffer, (growth / MIB, buffer / MIB)  # was about 3.8 buffers


def test_the_cost_is_read_from_the_header_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: ImageFile.ImageFile) -> None:
        raise AssertionError(f"a {self.size} pixel buffer was allocated")

    monkeypatch.setattr(ImageFile.ImageFile, "load_prepare", refuse)
    bomb = real_png_bomb(6300, 2)
    assert decode_cost(bomb, **LIMITS) >= 2 * 6300 * 6300 * 4
    grey = real_png_bomb(3000)
    assert decode_cost(grey, **LIMITS) < decode_cost(real_png_bomb(3000, 2), **LIMITS)


def test_one_decode_gives_what_the_separate_steps_give() -> None:
    data = encode(scene(1200, 800), "PNG")
    decoded = decode_image(data, **LIMITS)
    thumb = Image.open(io.BytesIO(decoded.thumbnail))
    separate = Image.open(io.BytesIO(make_thumbnail(decoded.checked)))
    assert (thumb.format, thumb.size) == (separate.format, separate.size) == ("WEBP", (256, 171))
    assert len(decoded.descriptor) == DESCRIPTOR_SIZE
    again = image_descriptor(decoded.checked)
    assert sum(a * b for a, b in zip(decoded.descriptor, again, strict=True)) > 0.999
