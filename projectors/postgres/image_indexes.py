"""What the image list filters need in the images read model: indexes, and projected per-day counters.

Owned by the lists work (docs/read-models-images.md); the images projector runs these statements after its own
tables (`{s}` is the schema) and lists `IMAGE_COUNT_TABLES` among its tables, so a rebuild builds and swaps the
counters together with the images.

`image_counts` holds, per UTC day of `created_at` and per public flag, how many images exist for the whole
gallery (user_id = 0, tag_id = 0), per owner (user_id, 0), per tag (0, tag_id) and per owner and tag. A row
trigger keeps it equal to `images` in the projector's own transaction (so a page's rows and its `total` can
never disagree), and deletes rows that reach zero (so a rebuild gives the same rows as the live copy). The list
engine answers `total` from it, and finds page N of a date order by summing days instead of reading N pages of
rows (query/counted.py).

The trigger function lives in `public` and finds the counters beside the table it fires for (TG_TABLE_SCHEMA):
a rebuild moves the tables from `rm_rebuild` into `rm`, and their triggers must keep working after the move.
The live schema gets a static statement (planned once per session); other schemas go through EXECUTE.
"""

from __future__ import annotations

from infra import locks
from projectors.base import LIVE_SCHEMA, REBUILD_SCHEMA

IMAGE_COUNT_TABLES: tuple[str, ...] = ("image_counts",)

# CREATE EXTENSION and CREATE OR REPLACE FUNCTION are not safe twice at once (projectors set up concurrently):
# the same advisory lock as the models projector's trigram setup.
_SETUP_LOCK = f"SELECT pg_advisory_xact_lock({locks.EXTENSIONS_SETUP})"

# The counter keys an image adds to: {0, owner} x {0, each distinct tag}.
_KEYS_FUNCTION = """
CREATE OR REPLACE FUNCTION public.aidraw_image_count_keys(owner bigint, tags bigint[])
RETURNS TABLE (user_id bigint, tag_id bigint) LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
  SELECT o, t FROM unnest(ARRAY[0::bigint, owner]) AS o,
                   unnest(ARRAY[0::bigint] || ARRAY(SELECT DISTINCT unnest(tags))) AS t
$fn$"""

# A row change is the old row's keys -1 and the new row's +1, netted, upserted through the primary key; then, only
# when a row went away or changed, the old keys' rows that reached 0 are deleted, one primary-key lookup each (a
# set-based DELETE got a cached generic plan that scanned the whole table on every insert). Written with named
# slots, rendered as plpgsql variables (static) or as $n parameters (EXECUTE).
_SLOTS = ("o_user", "o_tags", "o_at", "o_public", "n_user", "n_tags", "n_at", "n_public", "had_old", "has_new")
_UPSERT = """
INSERT INTO {table} AS c (user_id, tag_id, day, public, n)
SELECT k.user_id, k.tag_id, k.day, k.public, sum(k.n)::integer FROM (
  SELECT c.user_id, c.tag_id, ({o_at} AT TIME ZONE 'UTC')::date AS day, {o_public} AS public, -1 AS n
    FROM public.aidraw_image_count_keys({o_user}, {o_tags}) c WHERE {had_old}
  UNION ALL
  SELECT c.user_id, c.tag_id, ({n_at} AT TIME ZONE 'UTC')::date, {n_public}, 1
    FROM public.aidraw_image_count_keys({n_user}, {n_tags}) c WHERE {has_new}) k
GROUP BY 1, 2, 3, 4 HAVING sum(k.n) <> 0
ON CONFLICT (user_id, tag_id, day, public) DO UPDATE SET n = c.n + excluded.n"""
_PRUNE = "DELETE FROM {table} WHERE user_id = {key_user} AND tag_id = {key_tag} AND day = {day} AND public = {public}" \
         " AND n = 0"


def _static(schema: str) -> str:
    table = f"{schema}.image_counts"
    prune = _PRUNE.format(table=table, key_user="old_key.user_id", key_tag="old_key.tag_id",
                          day="(o_at AT TIME ZONE 'UTC')::date", public="o_public")
    return f"""{_UPSERT.format(table=table, **{slot: slot for slot in _SLOTS})};
    IF had_old THEN
      FOR old_key IN SELECT * FROM public.aidraw_image_count_keys(o_user, o_tags) LOOP {prune}; END LOOP;
    END IF"""


_DYNAMIC_UPSERT = _UPSERT.format(table="%1$I.image_counts", **{slot: f"${n}" for n, slot in enumerate(_SLOTS, 1)})
_DYNAMIC_PRUNE = _PRUNE.format(table="%1$I.image_counts", key_user="$1", key_tag="$2", day="$3", public="$4")

_TRIGGER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION public.aidraw_count_images() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  o_user bigint; o_tags bigint[]; o_at timestamptz; o_public boolean;
  n_user bigint; n_tags bigint[]; n_at timestamptz; n_public boolean;
  had_old boolean := TG_OP <> 'INSERT';
  has_new boolean := TG_OP <> 'DELETE';
  old_key record;
BEGIN
  IF had_old THEN o_user := OLD.user_id; o_tags := OLD.tag_ids; o_at := OLD.created_at; o_public := OLD.public;
  END IF;
  IF has_new THEN n_user := NEW.user_id; n_tags := NEW.tag_ids; n_at := NEW.created_at; n_public := NEW.public;
  END IF;
  IF TG_TABLE_SCHEMA = '{LIVE_SCHEMA}' THEN{_static(LIVE_SCHEMA)};
  ELSIF TG_TABLE_SCHEMA = '{REBUILD_SCHEMA}' THEN{_static(REBUILD_SCHEMA)};
  ELSE
    EXECUTE format($q${_DYNAMIC_UPSERT}$q$, TG_TABLE_SCHEMA)
      USING o_user, o_tags, o_at, o_public, n_user, n_tags, n_at, n_public, had_old, has_new;
    IF had_old THEN
      FOR old_key IN SELECT * FROM public.aidraw_image_count_keys(o_user, o_tags) LOOP
        EXECUTE format($q${_DYNAMIC_PRUNE}$q$, TG_TABLE_SCHEMA)
          USING old_key.user_id, old_key.tag_id, (o_at AT TIME ZONE 'UTC')::date, o_public;
      END LOOP;
    END IF;
  END IF;
  RETURN NULL;
END
$fn$"""

IMAGE_INDEXES: list[str] = [
    _SETUP_LOCK,
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # user=: one user's images in date order.
    "CREATE INDEX IF NOT EXISTS images_user_created ON {s}.images (user_id, created_at DESC, id DESC)",
    # tag=: containment and overlap of tag ids.
    "CREATE INDEX IF NOT EXISTS images_tag_ids ON {s}.images USING gin (tag_ids)",
    # sort=likes.
    "CREATE INDEX IF NOT EXISTS images_likes ON {s}.images (likes DESC, created_at DESC, id DESC)",
    # q=: substring search (ILIKE '%text%') in names and prompts.
    "CREATE INDEX IF NOT EXISTS images_name_trgm ON {s}.images USING gin (name gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS images_prompt_trgm ON {s}.images USING gin (prompt gin_trgm_ops)",
    # The planner's estimates for `q=` (ILIKE) and for tag arrays come from sampled statistics; the default sample
    # misjudged common words and tags by 100x at a million images (sorting 37,000 matches for a page of 20).
    "ALTER TABLE {s}.images ALTER COLUMN name SET STATISTICS 1000, ALTER COLUMN prompt SET STATISTICS 1000,"
    " ALTER COLUMN tag_ids SET STATISTICS 1000",
    "CREATE TABLE IF NOT EXISTS {s}.image_counts (user_id bigint NOT NULL, tag_id bigint NOT NULL,"
    " day date NOT NULL, public boolean NOT NULL, n integer NOT NULL,"
    " PRIMARY KEY (user_id, tag_id, day, public))",
    _KEYS_FUNCTION,
    _TRIGGER_FUNCTION,
    # Counters added to an existing read model start from its rows (no-op when they exist already).
    "INSERT INTO {s}.image_counts (user_id, tag_id, day, public, n)"
    " SELECT k.user_id, k.tag_id, (i.created_at AT TIME ZONE 'UTC')::date, i.public, count(*)"
    " FROM {s}.images i, public.aidraw_image_count_keys(i.user_id, i.tag_ids) k"
    " WHERE NOT EXISTS (SELECT 1 FROM {s}.image_counts) GROUP BY 1, 2, 3, 4",
    "CREATE OR REPLACE TRIGGER images_count AFTER INSERT OR DELETE ON {s}.images"
    " FOR EACH ROW EXECUTE FUNCTION public.aidraw_count_images()",
    "CREATE OR REPLACE TRIGGER images_recount AFTER UPDATE OF user_id, tag_ids, created_at, public ON {s}.images"
    " FOR EACH ROW WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id OR OLD.tag_ids IS DISTINCT FROM NEW.tag_ids"
    " OR OLD.created_at IS DISTINCT FROM NEW.created_at OR OLD.public IS DISTINCT FROM NEW.public)"
    " EXECUTE FUNCTION public.aidraw_count_images()",
]
