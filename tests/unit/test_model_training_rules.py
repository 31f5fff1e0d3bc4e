"""The Model aggregate's training rules (command/models.py): who may ask, what the model takes from its task, what a
cancel puts back, and the training parameters' 422 (no server needed)."""

from __future__ import annotations

import pytest

from command.models import Model, check_training
from command.run_report_loop import cover_of
from command.scheduler import cost_of
from events.ids import aggregate_uuid
from events.models import (
    ModelArtefactStored,
    ModelCreated,
    ModelTrainingCanceled,
    ModelTrainingFailed,
    ModelTrainingProgressed,
    ModelTrainingQueued,
    ModelTrainingRequested,
    ModelTrainingStarted,
)
from infra.errors import Conflict, Invalid


def new_model() -> Model:
    model = Model._create(ModelCreated, id=aggregate_uuid("model", 21), name="m", type="lora", base_model="SD1.5",
                          source=None, trigger_words="zqx", tag_ids=[], public=False, user_id=5,
                          data={"oss": [], "images": [3], "choices": []}, status="initial")
    model.collect_events()
    return model


def kinds(model: Model) -> list[type]:
    return [type(event) for event in model.collect_events()]


def test_a_request_is_queued_started_and_follows_the_milestones_of_its_task_only() -> None:
    model = new_model()
    model.request_training()
    assert model.status == "ready" and model.locked
    model.queue_training(77)
    assert (model.status, model.training_task) == ("waiting", 77)
    assert model.follow_task(77, "running", 0, None)
    assert model.follow_task(77, "running", 50, None)
    assert not model.follow_task(77, "running", 50, None)  # the same state again changes nothing
    assert not model.follow_task(76, "running", 75, None)  # a task of an older request
    assert (model.status, model.progress) == ("running", 50)
    assert model.follow_task(77, "running", 0, None)  # a redelivery started it again
    assert model.follow_task(77, "running", 50, None)
    assert model.follow_task(77, "waiting", 0, None)  # a failed attempt: it waits for the next
    assert (model.status, model.progress) == ("waiting", 0)
    assert model.follow_task(77, "error", 0, "out of memory")
    assert (model.status, model.error, model.locked) == ("error", "out of memory", False)
    assert kinds(model) == [ModelTrainingRequested, ModelTrainingQueued, ModelTrainingStarted,
                            ModelTrainingProgressed, ModelTrainingStarted, ModelTrainingProgressed,
                            ModelTrainingQueued, ModelTrainingFailed]
    assert not model.follow_task(77, "running", 75, None)  # ended: later reports change nothing


@pytest.mark.parametrize("before", ["initial", "error", "success"])
def test_a_cancel_puts_back_the_status_before_the_request(before: str) -> None:
    model = new_model()
    if before == "success":
        model.store_artefact("ab/cd/old.safetensors", 10, "trained")
    elif before == "error":
        model.request_training()
        model.refuse_training("too few images")
    model.request_training()
    model.queue_training(9)
    model.follow_task(9, "running", 25, None)
    assert model.follow_task(9, "canceled", 25, None)
    assert model.status == before and not model.locked
    assert model.progress == (100 if before == "success" else 0)
    assert model.model_path == ("ab/cd/old.safetensors" if before == "success" else None)
    assert kinds(model)[-1] is ModelTrainingCanceled


def test_a_request_with_no_task_yet_cancels_and_a_model_not_training_has_nothing_to_cancel() -> None:
    model = new_model()
    with pytest.raises(Conflict, match="nothing to cancel"):
        model.cancel_training()
    model.request_training()
    model.cancel_training()
    assert model.status == "initial"
    with pytest.raises(Conflict, match="ready"):
        model.queue_training(3)  # the process manager comes late: no task for a canceled request


def test_a_locked_model_takes_no_second_request_and_a_retrain_keeps_the_old_file_until_it_succeeds() -> None:
    model = new_model()
    model.store_artefact("old", 1, "trained")
    model.request_training()
    with pytest.raises(Conflict, match="ready"):
        model.request_training()
    model.queue_training(4)
    assert model.model_path == "old"
    model.store_artefact("new", 2, "trained")
    assert (model.status, model.model_path, model.progress) == ("success", "new", 100)
    assert kinds(model)[-1] is ModelArtefactStored


def test_training_parameters_are_checked_against_the_type_and_each_bad_one_named() -> None:
    assert check_training("lora", {"rank": 16.0, "steps": 200}) == {"rank": 16, "steps": 200}
    with pytest.raises(Invalid) as bad:
        check_training("lora", {"rank": 0, "num_vectors": 2, "learning_rate": "fast", "steps": 10})
    assert bad.value.status == 422
    assert {tuple(e["loc"]) for e in bad.value.errors or []} == {
        ("body", "training", "rank"), ("body", "training", "num_vectors"), ("body", "training", "learning_rate")}
    assert check_training("ti", {"num_vectors": 4}) == {"num_vectors": 4}


def test_a_train_task_costs_its_steps_batch_and_resolution_in_the_schedulers_units() -> None:
    recipe = {"kind": "train", "training": {"steps": 1000, "batch_size": 1, "resolution": 512}}
    assert cost_of(recipe) == 150.0  # 3 x 1000 steps of 512x512 = 150 images of 20 steps
    assert cost_of({**recipe, "training": {"steps": 100, "batch_size": 2, "resolution": 256}}) == 7.5


def test_a_cover_without_a_stored_pictures_fields_is_left_out() -> None:
    picture = {"blob_key": "ab/cd/x.png", "thumbnail_key": None, "content_type": "image/png", "width": 64,
               "height": 64, "seed": 3, "descriptor": None, "prompt": "ignored"}
    made = cover_of(picture)
    assert made is not None and (made.blob_key, made.width, made.seed) == ("ab/cd/x.png", 64, 3)
    assert cover_of({**picture, "width": None}) is None
    assert cover_of({"blob_key": "k"}) is None
    assert cover_of(None) is None
