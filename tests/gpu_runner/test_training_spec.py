"""The training parameters' check: defaults per type, overrides within bounds, every bad field named. Pure."""

from __future__ import annotations

import pytest

from gpu_runner.training.spec import InvalidTraining, defaults, validate_training


def test_no_parameters_give_the_recipe_defaults() -> None:
    lora = validate_training("lora", {})
    assert lora == defaults("lora")
    assert (lora["rank"], lora["learning_rate"], lora["min_snr_gamma"], lora["resolution"]) == (4, 1e-4, None, 512)
    assert validate_training("ti", {})["steps"] == 3000


def test_overrides_within_bounds_are_taken_and_typed() -> None:
    merged = validate_training("lora", {"rank": 16.0, "learning_rate": 3e-4, "min_snr_gamma": 5, "resolution": 768})
    assert merged["rank"] == 16 and isinstance(merged["rank"], int)
    assert merged["min_snr_gamma"] == 5.0 and merged["learning_rate"] == 3e-4
    assert validate_training("lora", {"min_snr_gamma": None})["min_snr_gamma"] is None


def test_every_bad_field_is_named_with_a_reason() -> None:
    with pytest.raises(InvalidTraining) as bad:
        validate_training("lora", {"rank": 0, "steps": 2.5, "resolution": 500, "num_vectors": 2, "seed": True,
                                   "learning_rate": "fast", "noise_offset": None})
    assert set(bad.value.errors) == {"rank", "steps", "resolution", "num_vectors", "seed", "learning_rate",
                                     "noise_offset"}
    assert "between 1 and 128" in bad.value.errors["rank"]
    assert "multiple of 8" in bad.value.errors["resolution"]
    assert "not a training parameter" in bad.value.errors["num_vectors"]


def test_an_unknown_model_type_is_refused() -> None:
    with pytest.raises(InvalidTraining) as bad:
        validate_training("gan", {})
    assert set(bad.value.errors) == {"type"}
