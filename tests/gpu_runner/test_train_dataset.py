"""A train task's dataset gathered on the runner (gpu_runner/train_dataset.py): blob store images with their
captions, URLs fetched from a real loopback server with `.txt` companions as captions, the repeat count; an item
that cannot be had is named, and whether trying again can help is said."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpu_runner.train_dataset import DatasetProblem, gather, training_images, trigger_words
from gpu_runner.training import TrainingFailed
from infra.storage.local import LocalBlobStore
from infra.urls import AllowList
from tests.training_runner import file_server, striped_png

LOOPBACK = AllowList.parse(["127.0.0.1"])


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    with file_server({"/a.png": ("image/png", striped_png(0)), "/a.txt": ("text/plain", b" a red zqx \n"),
                      "/b.png": ("image/png", striped_png(1)), "/bad.png": ("image/png", b"not a png at all"),
                      "/c.txt": ("text/plain", b"no image of this name")}) as url:
        yield url


def test_blob_images_and_urls_with_their_caption_companions(tmp_path: Path, files: str) -> None:
    blobs = LocalBlobStore(tmp_path)
    key = blobs.put(striped_png(2), "image/png")
    dataset = {"images": [{"image_id": 9, "blob_key": key, "caption": "a stripe"}],
               "oss": [f"{files}/a.txt", f"{files}/a.png", f"{files}/b.png", f"{files}/c.txt"], "repeats": 3}
    sources = gather(dataset, blobs, LOOPBACK)
    assert [(s.name, s.caption, s.repeats) for s in sources] == [
        ("image 9", "a stripe", 3), (f"{files}/a.png", "a red zqx", 3), (f"{files}/b.png", None, 3)]
    assert sources[1].data == striped_png(0)


def test_an_item_that_cannot_be_had_is_named(tmp_path: Path, files: str) -> None:
    blobs = LocalBlobStore(tmp_path)
    with pytest.raises(DatasetProblem, match="dataset image 4: its file is no longer stored"):
        gather({"images": [{"image_id": 4, "blob_key": "ab/cd/" + "ab" + "cd" + "0" * 60 + ".png"}]}, blobs, LOOPBACK)
    with pytest.raises(DatasetProblem, match="points at this machine") as refused:
        gather({"oss": [f"{files}/a.png"]}, blobs, AllowList())
    assert refused.value.final
    four = {"oss": [f"{files}/a.png", f"{files}/b.png", f"{files}/bad.png"],
            "images": [{"image_id": n, "blob_key": blobs.put(striped_png(n), "image/png")} for n in range(2)]}
    with pytest.raises(TrainingFailed, match=f"cannot be used: {files}/bad.png: "):
        training_images(four, blobs, LOOPBACK, resolution=32, words=("zqx",))


def test_trigger_words_are_comma_separated() -> None:
    assert trigger_words(" zqx, red  hat ,,") == ("zqx", "red  hat") and trigger_words(None) == ()
