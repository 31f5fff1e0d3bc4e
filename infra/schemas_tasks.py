"""The shapes clients see for generation requests and tasks (API.md "Image", "Task"; docs/tasks.md).

`GenerationIn` checks every field's type and range; what needs other objects (the source image, the model, the
LoRAs) and what depends on the configured bounds (size, pixel budget) is checked by command/generation.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from infra.schemas import Input, Page

MAX_ID = 2**53 - 1
MAX_SEED = 2**32 - 1
MAX_PROMPT = 4000
MAX_LORAS = 8
SCHEDULERS = ("DDIM", "K_EULER", "DPMSolverMultistep", "K_EULER_ANCESTRAL", "PNDM", "KLMS")
Scheduler = Literal["DDIM", "K_EULER", "DPMSolverMultistep", "K_EULER_ANCESTRAL", "PNDM", "KLMS"]
ObjectRef = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
Flag = Annotated[bool, Field(strict=True)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
TagNames = Annotated[list[Annotated[str, Field(strict=True, max_length=200)]], Field(max_length=20)]


class LoraRef(Input):
    model_id: ObjectRef
    weight: Annotated[Number, Field(ge=-2, le=2)] = 1.0


class GenerationIn(Input):
    """`POST /api/images` as JSON: a generation request (answered 202 with the task)."""

    prompt: Annotated[str, Field(strict=True, min_length=1, max_length=MAX_PROMPT)]
    negative_prompt: Annotated[str, Field(strict=True, max_length=MAX_PROMPT)] = ""
    num_inference_steps: Annotated[int, Field(strict=True, ge=1, le=500)] = 20
    guidance_scale: Annotated[Number, Field(ge=1, le=20)] = 7.5
    scheduler: Scheduler = "DPMSolverMultistep"
    seed: Annotated[int, Field(strict=True, ge=-1, le=MAX_SEED, description="-1 or absent: drawn")] = -1
    width: Annotated[int, Field(strict=True, ge=8, le=8192, multiple_of=8)] = 512
    height: Annotated[int, Field(strict=True, ge=8, le=8192, multiple_of=8)] = 512
    batch_size: Annotated[int, Field(strict=True, ge=1, le=8)] = 1
    from_image: ObjectRef | Annotated[str, Field(strict=True, min_length=1, max_length=2048)] | None = None
    strength: Annotated[Number, Field(ge=0, le=1)] | None = None
    model_id: ObjectRef | None = None
    loras: Annotated[list[LoraRef], Field(max_length=MAX_LORAS)] = Field(default_factory=list)
    name: Annotated[str, Field(strict=True, max_length=200)] | None = None
    tags: TagNames = Field(default_factory=list)
    public: Flag = True



class TaskPatch(Input):
    """The one change a client may make to a task: cancel it."""

    status: Literal["canceled"]


class TaskOut(BaseModel):
    id: int
    name: str
    type: str
    status: str
    progress: int
    data: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    waiting_reason: str | None
    queue_position: int | None = None  # detail only: waiting tasks of its kind that start before it
    estimated_start_at: datetime | None = None  # detail only: from the recent runs of its kind
    server_id: int | None
    server_name: str | None
    attempt: int
    tags: list[str]
    public: bool
    user_id: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class TaskPage(Page):
    list: list[TaskOut]  # type: ignore[assignment]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` written in place (for an `openapi_extra` request body, which
    FastAPI does not add to the components)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
