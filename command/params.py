"""Params: the aggregate (its rules) and the command handlers."""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

from command.app import CommandApp, retry_on_conflict
from command.owned import OwnedAggregate, clean_name, storable
from events.base import EventHandlers
from events.ids import aggregate_uuid, new_id
from events.params import ParamCreated, ParamDataReplaced, ParamDeleted, ParamRenamed, ParamVisibilityChanged
from events.store.protocol import IdempotencyArg
from infra.actor import Actor
from infra.errors import Invalid, TooLarge

MAX_DATA_BYTES = 64 * 1024  # serialised compactly as UTF-8
MAX_DATA_DEPTH = 16  # nested objects/arrays; deep nesting is never a parameter set, and recursion is not free
MAX_SAFE_INTEGER = 2**53 - 1  # API.md: numbers fit a JSON number exactly (a JavaScript client rounds past this)


def _refuse(message: str, path: tuple[str, ...]) -> Invalid:
    where = ".".join(("data", *path))
    return Invalid(f"{where}: {message}", errors=[{"loc": ["body", "data", *path], "msg": message,
                                                   "type": "value_error"}])


def _check_tree(data: dict[str, Any]) -> None:
    """Depth, integers a JavaScript client would round, and values the read model's jsonb cannot hold
    (NaN/Infinity, NUL characters, lone surrogates): refused here, because once in the log they would stop the
    projector. Iterative on purpose: a hostile document must not exhaust the interpreter's stack."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict | list):
            if len(path) >= MAX_DATA_DEPTH:
                raise _refuse(f"nests deeper than {MAX_DATA_DEPTH} levels of objects and arrays.", path)
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(key, str) and not storable(key):
                    raise _refuse("a key holds a NUL character or an unpaired surrogate, which cannot be stored.", path)
                stack.append((child, (*path, str(key))))
        elif isinstance(item, float) and not math.isfinite(item):
            raise _refuse("NaN and Infinity are not JSON numbers.", path)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_SAFE_INTEGER:
            shown = str(item) if abs(item) < 10**30 else f"an integer of {len(str(abs(item)))} digits"
            raise _refuse(f"{shown} is outside -{MAX_SAFE_INTEGER}..{MAX_SAFE_INTEGER}, where every client reads "
                          "an integer exactly; send it as a string.", path)
        elif isinstance(item, str) and not storable(item):
            raise _refuse("NUL characters and unpaired surrogates cannot be stored.", path)


def check_param_data(data: dict[str, Any]) -> dict[str, Any]:
    _check_tree(data)
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_DATA_BYTES:
        raise TooLarge(f"data is {size} bytes as JSON; at most {MAX_DATA_BYTES} are accepted.")
    return data


class Param(OwnedAggregate):
    what = "param"

    def __init__(self, name: str, data: dict[str, Any], public: bool, user_id: int) -> None:
        self.name = name
        self.data = data
        self.public = public
        self.user_id = user_id
        self.deleted = False

    def change(self, name: str | None, data: dict[str, Any] | None, public: bool | None) -> None:
        if name is not None and name != self.name:
            self.trigger_event(ParamRenamed, name=name)
        if data is not None and data != self.data:
            self.trigger_event(ParamDataReplaced, data=data)
        if public is not None and public != self.public:
            self.trigger_event(ParamVisibilityChanged, public=public)

    def delete(self) -> None:
        self.trigger_event(ParamDeleted)

    def _param_renamed(self, event: ParamRenamed) -> None:
        self.name = event.name

    def _param_data_replaced(self, event: ParamDataReplaced) -> None:
        self.data = event.data

    def _param_visibility_changed(self, event: ParamVisibilityChanged) -> None:
        self.public = event.public

    def _param_deleted(self, event: ParamDeleted) -> None:
        self.deleted = True

    WHEN: ClassVar[EventHandlers] = {
        ParamRenamed: _param_renamed,
        ParamDataReplaced: _param_data_replaced,
        ParamVisibilityChanged: _param_visibility_changed,
        ParamDeleted: _param_deleted,
    }


def create_param(app: CommandApp, actor: Actor, name: str, data: dict[str, Any], public: bool,
                 idempotency_key: IdempotencyArg = None) -> tuple[Param, int]:
    assert actor.user_id is not None, "routes require a logged-in user"
    name = clean_name(name)
    check_param_data(data)

    def attempt() -> tuple[Param, int]:
        param = Param._create(ParamCreated, id=aggregate_uuid("param", new_id()), name=name, data=data,
                              public=public, user_id=actor.user_id)
        return param, app.store(param, idempotency_key=idempotency_key)

    return retry_on_conflict(attempt)


def change_param(app: CommandApp, actor: Actor, number: int, *, name: str | None = None,
                 data: dict[str, Any] | None = None, public: bool | None = None) -> tuple[Param, int]:
    """Change the fields given (None = leave as it is)."""
    if name is not None:
        name = clean_name(name)
    if data is not None:
        check_param_data(data)

    def attempt() -> tuple[Param, int]:
        param = app.load(Param, "param", number)
        param.check_can_change(actor)
        param.change(name, data, public)
        return param, app.store(param)

    return retry_on_conflict(attempt)


def delete_param(app: CommandApp, actor: Actor, number: int) -> int:
    def attempt() -> int:
        param = app.load(Param, "param", number)
        param.check_can_change(actor)
        param.delete()
        return app.store(param)

    return retry_on_conflict(attempt)
