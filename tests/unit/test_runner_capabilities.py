"""`AIDRAW_RUNNER_CAPABILITIES`: `default` and `<capability>=<path>` (`<file>:<config folder>` for a single file);
anything else is refused at start with the variable's name and what to write."""

from __future__ import annotations

from pathlib import Path

import pytest

from aidraw.runner_role import capabilities
from gpu_runner.work_items import Base
from infra.settings import Settings, SettingsError


def served(value: str, tmp_path: Path) -> dict[str, Base]:
    return capabilities(Settings(runner_capabilities=value, base_model_path=str(tmp_path)))


def test_names_map_to_folders_and_single_files_with_their_config(tmp_path: Path) -> None:
    (tmp_path / "sd15.safetensors").write_bytes(b"x")
    result = served(f"default,sd15={tmp_path / 'sd15.safetensors'}:{tmp_path},base-42={tmp_path}", tmp_path)
    bases = {"default": Base(tmp_path, tmp_path.stem, None),
             "sd15": Base(tmp_path / "sd15.safetensors", "sd15", tmp_path),
             "base-42": Base(tmp_path, tmp_path.name, None)}
    # a runner serves both kinds by default (AIDRAW_RUNNER_KINDS): each base also as `train-<capability>`
    assert result == {**bases, **{f"train-{name}": base for name, base in bases.items()}}


@pytest.mark.parametrize("entry", ["a.b={p}", "train-x={p}", "default={p}", "sd15=", "sd15={p}/missing", "sd15"])
def test_unusable_entries_are_refused_with_the_variable_named(entry: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="AIDRAW_RUNNER_CAPABILITIES"):
        served(entry.format(p=tmp_path), tmp_path)
