"""Dataset materialisation: sizes, crops, captions and companions, repeats, and refusals before any training."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gpu_runner.training import TrainingFailed
from gpu_runner.training.dataset import Limits, Source, caption_for, materialise, with_companions


def _png(width: int, height: int, colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    array = np.zeros((height, width, 3), np.uint8)
    array[:] = colour
    array[:, : width // 4] = 0  # a dark left quarter: cropped away from a wide image
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_images_are_scaled_and_centre_cropped_to_the_resolution() -> None:
    sources = [Source(f"i{n}", _png(w, h)) for n, (w, h) in enumerate([(128, 64), (64, 128), (40, 40), (64, 64)])]
    items, skipped = materialise(sources, resolution=32, trigger_words=["zqx"])
    assert skipped == [] and all(item.image.size == (32, 32) for item in items)
    wide = np.asarray(items[0].image)
    assert wide[:, 0].max() > 100  # the 128x64 image lost its dark left quarter to the crop


def test_captions_come_from_the_item_or_its_companion_else_the_trigger_words() -> None:
    assert caption_for("a red car", ["zqx"]) == "zqx, a red car"
    assert caption_for("zqx on a hill", ["zqx"]) == "zqx on a hill"
    assert caption_for(None, ["zqx", "style"]) == "zqx, style"
    files = {"a.png": _png(32, 32), "a.txt": b"a dog\n", "b.png": _png(32, 32), "notes.md": b"x"}
    sources = with_companions(files, repeats=3)
    assert [(s.name, s.caption, s.repeats) for s in sources] == [("a.png", "a dog", 3), ("b.png", None, 3)]


def test_bad_items_are_skipped_with_reasons_and_too_few_fail_the_set() -> None:
    good = [Source(f"g{n}", _png(32, 32)) for n in range(4)]
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(noise, "PNG")
    bad = [Source("broken", b"\x89PNG\r\n\x1a\nnope"), Source("huge", noise.getvalue()),
           Source("many", _png(32, 32), repeats=0)]
    items, skipped = materialise(good + bad[:1] + bad[2:], resolution=32, trigger_words=["zqx"])
    assert len(items) == 4 and len(skipped) == 2 and skipped[0].startswith("broken: ")
    with pytest.raises(TrainingFailed, match=r"only 3 usable images, at least 4 needed \(huge: "):
        materialise(good[:3] + bad[1:2], resolution=32, trigger_words=["zqx"], limits=Limits(max_bytes=5000))
