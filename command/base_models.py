"""Base models an admin registers (`aidraw base register`): public, system-owned `ckp` models in status success,
each naming the capability of the runners that serve it (docs/generation.md, "Base models").

Registration records what runs where: the runner's own configuration (`AIDRAW_RUNNER_CAPABILITIES`,
`<capability>=<path>`) maps the capability to a local path. A generation whose `model_id` names such a model gets
that capability (command/generation_models.py).
"""

from __future__ import annotations

from command.app import CommandApp
from command.generation_models import SYSTEM_USER_ID
from command.models import Model
from command.owned import clean_name
from events.ids import aggregate_uuid, new_id
from events.models import BASE_MODELS, ModelCreated
from infra.capabilities import CAPABILITY
from infra.errors import Invalid


def check_capability(capability: str) -> str:
    if not CAPABILITY.fullmatch(capability) or capability.startswith("train-"):
        raise Invalid(f"capability {capability[:80]!r} is not usable: use 1 to 64 letters, digits, _ or - "
                      "(not starting with train-), the name the runners list in AIDRAW_RUNNER_CAPABILITIES.",
                      field="capability")
    return capability


def register_base(app: CommandApp, *, name: str, capability: str, base_model: str,
                  trigger_words: str = "") -> tuple[Model, int]:
    """Append a public, system-owned ckp model (status success) served by the runners of `capability`."""
    name = clean_name(name, field="name")
    check_capability(capability)
    if base_model not in BASE_MODELS:
        raise Invalid(f"base model {base_model!r} is not one of {', '.join(BASE_MODELS)}.", field="base_model")
    model = Model._create(ModelCreated, id=aggregate_uuid("model", new_id()), name=name, type="ckp",
                          base_model=base_model, source=None, trigger_words=trigger_words.strip(), tag_ids=[],
                          public=True, user_id=SYSTEM_USER_ID, data={"capability": capability},
                          status="success")
    return model, app.store(model)
