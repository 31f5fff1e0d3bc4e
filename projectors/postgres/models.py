"""Read model of models: one row per live model; tags as ids (names are joined from rm.tags when read).

A deleted tag leaves every model here (TagDeleted is applied to `tag_ids`), so a `tag=` filter never finds a
model by a tag that no longer exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from events.models import (
    ModelArtefactStored,
    ModelCoverChosen,
    ModelCreated,
    ModelDeleted,
    ModelRenamed,
    ModelTagsChanged,
    ModelTrainingCanceled,
    ModelTrainingChanged,
    ModelTrainingFailed,
    ModelTrainingProgressed,
    ModelTrainingQueued,
    ModelTrainingRequested,
    ModelTrainingStarted,
    ModelTriggerWordsChanged,
    ModelVisibilityChanged,
)
from events.tags import TagDeleted
from infra import locks
from projectors.base import Projector
from projectors.postgres.ids import object_id

# CREATE EXTENSION is not safe to run twice at once (projectors set up concurrently): serialise it.
TRIGRAM_EXTENSION = (f"DO $$ BEGIN PERFORM pg_advisory_xact_lock({locks.EXTENSIONS_SETUP}); "
                     "CREATE EXTENSION IF NOT EXISTS pg_trgm; END $$")


class ModelsProjector(Projector):
    name = "models"
    tables = ("models",)
    collections = ("models",)

    def ddl(self) -> Sequence[str]:
        return [
            TRIGRAM_EXTENSION,
            "CREATE TABLE IF NOT EXISTS {s}.models ("
            " id bigint PRIMARY KEY, user_id bigint NOT NULL, name text NOT NULL, type text NOT NULL,"
            " base_model text NOT NULL, source bigint, trigger_words text NOT NULL,"
            " tag_ids bigint[] NOT NULL DEFAULT '{}', public boolean NOT NULL, status text NOT NULL,"
            " progress int NOT NULL DEFAULT 0, model_path text, cover_image_id bigint, data jsonb NOT NULL,"
            " training jsonb NOT NULL DEFAULT '{}', task_id bigint, error text,"
            " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, version bigint NOT NULL)",
            "CREATE INDEX IF NOT EXISTS models_created ON {s}.models (created_at DESC, id DESC)",
            "CREATE INDEX IF NOT EXISTS models_user_created ON {s}.models (user_id, created_at DESC, id DESC)",
            "CREATE INDEX IF NOT EXISTS models_tag_ids ON {s}.models USING gin (tag_ids)",
            "CREATE INDEX IF NOT EXISTS models_name_trgm ON {s}.models USING gin (name gin_trgm_ops)",
            "CREATE INDEX IF NOT EXISTS models_trigger_words_trgm ON {s}.models"
            " USING gin (trigger_words gin_trgm_ops)",
        ]

    async def apply(self, cur: Any, s: str, seq: int, event: Any) -> None:
        if isinstance(event, ModelCreated):
            await cur.execute(
                self.sql("INSERT INTO {s}.models (id, user_id, name, type, base_model, source, trigger_words,"
                         " tag_ids, public, status, data, created_at, updated_at, version)"
                         " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", s),
                (object_id(event), event.user_id, event.name, event.type, event.base_model, event.source,
                 event.trigger_words, list(event.tag_ids), event.public, event.status, Jsonb(event.data),
                 event.timestamp, event.timestamp, seq),
            )
        elif isinstance(event, ModelRenamed):
            await self._set(cur, s, seq, event, "name", event.name)
        elif isinstance(event, ModelTriggerWordsChanged):
            await self._set(cur, s, seq, event, "trigger_words", event.trigger_words)
        elif isinstance(event, ModelTagsChanged):
            await self._set(cur, s, seq, event, "tag_ids", list(event.tag_ids))
        elif isinstance(event, ModelVisibilityChanged):
            await self._set(cur, s, seq, event, "public", event.public)
        elif isinstance(event, ModelCoverChosen):
            await self._set(cur, s, seq, event, "cover_image_id", event.image_id)
        elif isinstance(event, ModelArtefactStored):
            await cur.execute(
                self.sql("UPDATE {s}.models SET model_path = %s, status = 'success', progress = 100, updated_at = %s,"
                         " version = %s WHERE id = %s", s),
                (event.model_path, event.timestamp, seq, object_id(event)),
            )
        elif isinstance(event, ModelTrainingChanged):
            await self._set(cur, s, seq, event, "training", Jsonb(event.training))
        elif isinstance(event, ModelTrainingRequested):
            await self._set(cur, s, seq, event, "status", "ready")
        elif isinstance(event, ModelTrainingQueued):
            await self._set_many(cur, s, seq, event, status="waiting", progress=0, task_id=event.task_id)
        elif isinstance(event, ModelTrainingStarted):
            await self._set_many(cur, s, seq, event, status="running", progress=0)
        elif isinstance(event, ModelTrainingProgressed):
            await self._set(cur, s, seq, event, "progress", event.progress)
        elif isinstance(event, ModelTrainingFailed):
            await self._set_many(cur, s, seq, event, status="error", progress=0, error=event.error)
        elif isinstance(event, ModelTrainingCanceled):
            await self._set_many(cur, s, seq, event, status=event.status,
                                 progress=100 if event.status == "success" else 0)
        elif isinstance(event, ModelDeleted):
            await cur.execute(self.sql("DELETE FROM {s}.models WHERE id = %s", s), (object_id(event),))
        elif isinstance(event, TagDeleted):
            tag = object_id(event)
            await cur.execute(
                self.sql("UPDATE {s}.models SET tag_ids = array_remove(tag_ids, %s::bigint)"
                         " WHERE tag_ids @> ARRAY[%s::bigint]", s),
                (tag, tag),
            )

    async def _set(self, cur: Any, s: str, seq: int, event: Any, column: str, value: Any) -> None:
        await self._set_many(cur, s, seq, event, **{column: value})

    async def _set_many(self, cur: Any, s: str, seq: int, event: Any, **values: Any) -> None:
        columns = ", ".join(f"{column} = %s" for column in values)
        await cur.execute(
            self.sql(f"UPDATE {{s}}.models SET {columns}, updated_at = %s, version = %s WHERE id = %s", s),
            (*values.values(), event.timestamp, seq, object_id(event)),
        )
