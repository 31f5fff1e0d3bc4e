"""A work item's recipe as pipeline requests: adapters and a user's checkpoint become local files, named for the
PNG; a recipe whose files the runner lacks, or one from before adapters were resolved, is refused with a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpu_runner.pipeline import AdapterRef, Unsupported
from gpu_runner.work_items import Base, model_files_of, requests_for

LORA_KEY, TI_KEY, CKP_KEY = "aa/aa/" + "a" * 64 + ".safetensors", "bb/bb/" + "b" * 64 + ".safetensors", \
    "cc/cc/" + "c" * 64 + ".safetensors"


def item(**data: Any) -> dict[str, Any]:
    recipe = {"prompt": "zqx", "negative_prompt": "", "num_inference_steps": 4, "guidance_scale": 7,
              "scheduler": "DDIM", "seed": 5, "width": 64, "height": 64, "batch_size": 2}
    return {"task_id": 12, "data": recipe | data}


ADAPTERS = [{"model_id": 3, "weight": 0.5, "type": "lora", "blob_key": LORA_KEY, "name": "model-3"},
            {"model_id": 4, "weight": 1, "type": "ti", "blob_key": TI_KEY, "name": "model-4", "token": "zqx"}]


def test_adapters_and_a_checkpoint_become_local_files(tmp_path: Path) -> None:
    task = item(adapters=ADAPTERS, loras=[{"model_id": 3, "weight": 0.5}, {"model_id": 4, "weight": 1}],
                model_id=9, capability="sd15", checkpoint_key=CKP_KEY)
    assert model_files_of(task) == {LORA_KEY: "LoRA model 3", TI_KEY: "textual inversion model 4",
                                    CKP_KEY: "checkpoint model 9"}
    files = {key: tmp_path / f"{n}.safetensors" for n, key in enumerate((LORA_KEY, TI_KEY, CKP_KEY))}
    base = Base(tmp_path / "sd15", "sd15")
    requests = requests_for(task, base, None, files)
    assert [r.seed for r in requests] == [5, 6]
    first = requests[0]
    assert (first.base, first.base_config, first.base_name) == (files[CKP_KEY], base.path, "model-9")
    assert first.adapters == (AdapterRef(files[LORA_KEY], "lora", 0.5, None, "model-3"),
                              AdapterRef(files[TI_KEY], "ti", 1.0, "zqx", "model-4"))


def test_a_single_file_base_lends_its_config_folder_to_a_checkpoint(tmp_path: Path) -> None:
    base = Base(tmp_path / "sd15.safetensors", "sd15", tmp_path / "config")
    [request] = requests_for(item(batch_size=1, model_id=9, checkpoint_key=CKP_KEY), base, None,
                             {CKP_KEY: tmp_path / "c.safetensors"})
    assert request.base_config == tmp_path / "config"


@pytest.mark.parametrize(("task", "message"), [
    (item(adapters=ADAPTERS), "no local copy of 2 model file"),
    (item(loras=[{"model_id": 3, "weight": 1}]), "ask again"),
])
def test_what_the_runner_cannot_serve_is_refused(task: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(Unsupported, match=message):
        requests_for(task, Base(tmp_path, "tiny"), None, {})
