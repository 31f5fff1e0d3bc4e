"""The models of a generation request, checked and resolved into what the runner needs (docs/generation.md,
"Models in a request").

Each model is loaded from the log as an aggregate (never a read model, which may lag). The base (`model_id`, a
`ckp` model) becomes the task's `capability` (which runners take it) and, for a user's own checkpoint, the blob
key of its file (`checkpoint_key`); each `loras` entry (a `lora`, `ti` or `hyper` model) becomes an `adapters`
entry carrying its type, weight and blob key (and a textual inversion's token), so that the runner never reads a
read model. The client's `loras` stay as sent: the images carry them, and they must not show blob keys.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import AggregateNotFoundError

from command.app import CommandApp
from events.ids import aggregate_uuid
from infra.actor import Actor
from infra.authz import can_see
from infra.errors import Invalid
from infra.schemas_tasks import GenerationIn

# The owner of the base models an admin registers (`aidraw base register`): no user has this id (public ids are
# positive), so nobody can log in as it, and only admins can change what it owns.
SYSTEM_USER_ID = 0
DEFAULT_CAPABILITY = "default"
ADAPTER_TYPES = frozenset({"lora", "ti", "hyper"})
MAX_SOURCE_STEPS = 8  # checkpoints trained from checkpoints: how far back the registered base is looked for


def _visible_model(app: CommandApp, actor: Actor, number: int, field: str) -> Any:
    try:
        model: Any = app.repository.get(aggregate_uuid("model", number))
    except AggregateNotFoundError:
        model = None
    if model is None or getattr(model, "deleted", True) or not can_see(actor, model.user_id, model.public):
        raise Invalid(f"There is no model {number} that you can see.", field=field)
    return model


def _check_usable(model: Any, number: int, field: str) -> None:
    if model.status != "success":
        raise Invalid(f"Model {number} is {model.status}: only a model in status success can be used.", field=field)


def _registered_capability(model: Any) -> str | None:
    """The capability of a base model an admin registered (system-owned), else None."""
    capability = model.data.get("capability") if model.user_id == SYSTEM_USER_ID else None
    return str(capability) if capability else None


def _source_capability(app: CommandApp, model: Any) -> str:
    """A user's checkpoint runs where the registered base it derives from runs (following `source` through other
    checkpoints, a few steps at most); the default base otherwise."""
    for _ in range(MAX_SOURCE_STEPS):
        if model.source is None:
            break
        try:
            model = app.repository.get(aggregate_uuid("model", model.source))
        except AggregateNotFoundError:
            break
        if getattr(model, "deleted", True):
            break
        registered = _registered_capability(model)
        if registered is not None:
            return registered
    return DEFAULT_CAPABILITY


def resolve_base(app: CommandApp, actor: Actor, number: int) -> dict[str, Any]:
    """`model_id` -> the recipe's `capability` (and `checkpoint_key` for a user's checkpoint file)."""
    field = "body.model_id"
    model = _visible_model(app, actor, number, field)
    if model.type != "ckp":
        raise Invalid(f"model_id {number} is a {model.type} model; model_id names a base (ckp) model. "
                      "LoRA, textual inversion and hypernetwork models go in `loras`.", field=field)
    _check_usable(model, number, field)
    registered = _registered_capability(model)
    if registered is not None:
        return {"capability": registered}
    if not model.model_path:
        raise Invalid(f"Model {number} has no stored checkpoint file; upload or train it first.", field=field)
    return {"capability": _source_capability(app, model), "checkpoint_key": model.model_path}


def _trigger_token(model: Any) -> str | None:
    words = [w.strip() for w in str(model.trigger_words).split(",") if w.strip()]
    return words[0] if words else None


def resolve_adapters(app: CommandApp, actor: Actor, body: GenerationIn) -> list[dict[str, Any]]:
    """`loras` -> the recipe's `adapters`: `{model_id, weight, type, blob_key, name, token?}` each."""
    seen: set[int] = set()
    for index, ref in enumerate(body.loras):
        if ref.model_id in seen:
            raise Invalid(f"loras[{index}]: model {ref.model_id} is listed twice.",
                          field=f"body.loras.{index}.model_id")
        seen.add(ref.model_id)
    adapters = []
    for index, ref in enumerate(body.loras):
        field = f"body.loras.{index}.model_id"
        model = _visible_model(app, actor, ref.model_id, field)
        if model.type not in ADAPTER_TYPES:
            raise Invalid(f"loras[{index}]: model {ref.model_id} is a {model.type} model; only lora, ti and hyper "
                          "models apply on top of a base (a ckp model goes in model_id).", field=field)
        _check_usable(model, ref.model_id, field)
        if not model.model_path:
            raise Invalid(f"loras[{index}]: model {ref.model_id} has no stored file; upload or train it first.",
                          field=field)
        adapter = {"model_id": ref.model_id, "weight": ref.weight, "type": model.type,
                   "blob_key": model.model_path, "name": f"model-{ref.model_id}"}
        if model.type == "ti":
            token = _trigger_token(model)
            if token is None:
                raise Invalid(f"loras[{index}]: textual inversion model {ref.model_id} has no trigger word; give "
                              "it one (PATCH trigger_words): prompts call it by that word.", field=field)
            adapter["token"] = token
        adapters.append(adapter)
    return adapters


def resolve_models(app: CommandApp, actor: Actor, body: GenerationIn) -> dict[str, Any]:
    """The recipe fields the models add: `capability` and `checkpoint_key` (with a model_id), `adapters` (with
    loras). A request with neither adds nothing: it runs on the default base."""
    fields: dict[str, Any] = resolve_base(app, actor, body.model_id) if body.model_id is not None else {}
    adapters = resolve_adapters(app, actor, body)
    return {**fields, "adapters": adapters} if adapters else fields
