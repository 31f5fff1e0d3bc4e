"""Bring your own model: a multipart `.safetensors` upload read to a temporary file, checked, and made a model.

The body is counted as it arrives (413 past AIDRAW_MODEL_UPLOAD_MAX_BYTES, with or without a Content-Length);
the file part goes to a temporary file, never whole into memory. Only its safetensors header is read
(infra/model_files.py: never a pickle, never the weights): a file that is not exactly what its header says, or
whose keys do not fit the model's type and base, is 422 and nothing is stored. A good file is stored in the blob
store (content-addressed), then the model is created and its artefact recorded in one write: ModelCreated and
ModelArtefactStored(origin "uploaded"), so the model is `success` from its first event on.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from command.app import CommandApp
from command.items import check_visible
from command.models import INITIAL, Model, clean_trigger_words
from command.multipart import read_form
from command.owned import clean_name
from command.tag_refs import clean_tag_names, resolve_tags, retry_on_tag_race
from events.ids import aggregate_uuid, new_id
from events.models import ModelCreated
from events.store.protocol import IdempotencyArg
from infra.actor import Actor
from infra.errors import Invalid, TooLarge
from infra.http import read_bool
from infra.model_files import MAX_SIZE, InvalidModelFile, ModelFile, check_model_file, header_bytes_needed
from infra.schemas import Input
from infra.schemas_catalog import BaseModelName, ModelTypeName, Name, ObjectRef, TagNames, TriggerWords

SINGLE = ("name", "type", "base_model", "source", "trigger_words", "public")
CONTENT_TYPE = "application/x-safetensors"
SEND = ("send a .safetensors file in the `file` field with `type` (lora, ti, hyper, ckp) and `base_model` "
        "(SD1.5, SD2)")

UPLOAD_BODY: dict[str, Any] = {"requestBody": {"content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "type", "base_model"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "a .safetensors file: LoRA (diffusers or kohya keys), embedding, hypernetwork or "
                                "checkpoint (original SD layout)"},
        "type": {"type": "string", "enum": ["lora", "ti", "hyper", "ckp"]},
        "base_model": {"type": "string", "enum": ["SD1.5", "SD2"]},
        "name": {"type": "string", "maxLength": 200, "description": "default: the file's name"},
        "source": {"type": "integer", "minimum": 1},
        "trigger_words": {"type": "string", "maxLength": 1000},
        "tags": {"type": "string", "description": "tag names, comma-separated; the field may repeat"},
        "public": {"type": "boolean", "default": False},
    }}}}}}


class ModelUploadFields(Input):
    name: Name
    type: ModelTypeName
    base_model: BaseModelName
    source: ObjectRef | None = None
    trigger_words: TriggerWords = ""
    tags: TagNames = Field(default_factory=list)
    public: Annotated[bool, Field(strict=True)] = False


@dataclass
class ModelUpload:
    path: Path  # the file, in a temporary folder the caller removes (`discard`)
    size: int
    fields: ModelUploadFields
    checked: ModelFile

    def discard(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


def _too_large(max_bytes: int) -> TooLarge:
    return TooLarge(f"The upload is too large: a model file may have at most {max_bytes} bytes "
                    "(AIDRAW_MODEL_UPLOAD_MAX_BYTES).")


def _fields(form: Any, filename: str) -> ModelUploadFields:
    values: dict[str, Any] = {}
    for key in set(form.keys()) - {"file"}:
        items = form.getlist(key)
        if any(not isinstance(item, str) for item in items):
            raise Invalid(f"{key} must be a text field, not a file.", field=f"body.{key}")
        if key in SINGLE:
            if len(items) > 1:
                raise Invalid(f"{key} may be given once.", field=f"body.{key}")
            values[key] = items[0]
        elif key == "tags":
            values[key] = [name.strip() for item in items for name in item.split(",") if name.strip()]
        else:
            raise Invalid(f"Unknown field {key!r}; {SEND}, and optionally name, source, trigger_words, tags and "
                          "public.", field=f"body.{key}")
    if "public" in values:
        flag = read_bool(values["public"].strip())
        if flag is None:
            raise Invalid("public must be true or false.", field="body.public")
        values["public"] = flag
    if "source" in values:
        values["source"] = int(values["source"]) if values["source"].strip().isdigit() else values["source"]
    if not values.get("name", "").strip():
        values["name"] = PurePosixPath(filename.replace("\\", "/")).stem.strip()[:200]
    try:
        return ModelUploadFields.model_validate(values)
    except ValidationError as exc:
        errors = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Invalid("Invalid upload fields: " + ", ".join(".".join(e["loc"][1:]) for e in errors) + f"; {SEND}.",
                      errors=errors) from None


def _check(path: Path, size: int, fields: ModelUploadFields) -> ModelFile:
    if size > MAX_SIZE[fields.type]:
        raise TooLarge(f"A {fields.type} file may have at most {MAX_SIZE[fields.type]} bytes; this one has {size}.")
    with path.open("rb") as file:
        head = file.read(8)
        try:
            head += file.read(header_bytes_needed(head) - len(head))
            return check_model_file(head, size, fields.type, fields.base_model)
        except InvalidModelFile as exc:
            raise Invalid(f"The file is not a usable {fields.type} model for {fields.base_model}: {exc}; {SEND}.",
                          field="body.file") from None


def _spill(upload: UploadFile) -> tuple[Path, int]:
    """The uploaded part copied to a named file (the blob store stores files by path)."""
    folder = Path(tempfile.mkdtemp(prefix="aidraw-model-"))
    path = folder / "model.safetensors"
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1024 * 1024)
    return path, path.stat().st_size


async def read_model_upload(request: Request, max_bytes: int) -> ModelUpload:
    """The upload's file (in a temporary file) and fields, checked; 413 over `max_bytes`, 422 otherwise."""
    form = await read_form(request, max_bytes, lambda: _too_large(max_bytes))
    try:
        files = form.getlist("file")
        if len(files) != 1 or not isinstance(files[0], UploadFile):
            raise Invalid(f"Send exactly one file in the `file` field: {SEND}.", field="body.file")
        fields = _fields(form, files[0].filename or "")
        path, size = await run_in_threadpool(_spill, files[0])
    finally:
        await form.close()
    try:
        if size > max_bytes:
            raise _too_large(max_bytes)
        checked = await run_in_threadpool(_check, path, size, fields)
    except BaseException:
        shutil.rmtree(path.parent, ignore_errors=True)
        raise
    return ModelUpload(path, size, fields, checked)


def upload_model(app: CommandApp, actor: Actor, fields: ModelUploadFields, store: Callable[[], str], size: int,
                 idempotency_key: IdempotencyArg = None) -> tuple[Model, int]:
    """Check the fields, then `store` the file (it returns the blob key), then create the model with it,
    `success` at once, in one write. Nothing is stored when a field is refused."""
    assert actor.user_id is not None, "routes require a logged-in user"
    name = clean_name(fields.name)
    trigger_words = clean_trigger_words(fields.trigger_words)
    clean_tag_names(fields.tags)
    if fields.source is not None:
        check_visible(app, actor, "model", "model", fields.source, "body.source")
    model_path = store()

    def attempt() -> tuple[Model, int]:
        tag_ids, new_tags, claims = resolve_tags(app, actor, fields.tags)
        model = Model._create(ModelCreated, id=aggregate_uuid("model", new_id()), name=name, type=fields.type,
                              base_model=fields.base_model, source=fields.source, trigger_words=trigger_words,
                              tag_ids=tag_ids, public=fields.public, user_id=actor.user_id,
                              data={"oss": [], "images": [], "choices": []}, status=INITIAL)
        model.store_artefact(model_path, size, "uploaded")
        return model, app.store(model, *new_tags, claims=claims, idempotency_key=idempotency_key)

    return retry_on_tag_race(attempt)
