"""Each collection's list table: the parameters it accepts, its sorts, its rows, who sees them.

API.md "Lists": `user` (also `user_id`), `tag`, `public`, `date`, `q` where a collection has those things;
images also `choice` and `like`; models also `status`, `type`, `base_model`; servers `status` (their live one).
A parameter a collection does not list here answers 422, so a client never believes a filter applied when it
did not.
"""

from __future__ import annotations

from events.models import BASE_MODELS, MODEL_STATUSES, MODEL_TYPES
from events.users import ROLES
from query.filters import Contains, CreatedOn, Filter, Flag, InChoice, LikedBy, LiveStatus, OneOf, OwnedBy, Tagged
from query.listing import Collection

TASK_STATUSES = ("initial", "ready", "waiting", "running", "success", "error", "canceled")
TASK_TYPES = ("inference", "train")

_OWNER = OwnedBy()
_OWNED: dict[str, Filter] = {"user": _OWNER, "user_id": _OWNER, "public": Flag(), "date": CreatedOn()}

IMAGES = Collection(
    name="images", table="rm.images", alias="i", counters="rm.image_counts",
    params={**_OWNED, "tag": Tagged(), "q": Contains(("name", "prompt")), "choice": InChoice(), "like": LikedBy()},
    sorts=("date-", "date+", "likes", "like", "history", "choice"),  # the last three: query/recommend.py
)

MODELS = Collection(
    name="models", table="rm.models", alias="m",
    params={**_OWNED, "tag": Tagged(), "q": Contains(("name", "trigger_words")),
            "status": OneOf("status", MODEL_STATUSES), "type": OneOf("type", MODEL_TYPES),
            "base_model": OneOf("base_model", BASE_MODELS)},
)

# Tasks are their owner's (and admins'): never public. `tag` = the tags requested for the task's images.
TASKS = Collection(
    name="tasks", table="rm.tasks", alias="k", visibility="own",
    params={"user": _OWNER, "user_id": _OWNER, "date": CreatedOn(), "tag": Tagged(),
            "status": OneOf("status", TASK_STATUSES), "type": OneOf("type", TASK_TYPES)},
)

PARAMS = Collection(name="params", table="rm.params", params={**_OWNED, "q": Contains(("name",))})

DATASETS = Collection(name="datasets", table="rm.datasets", params={**_OWNED, "q": Contains(("name",))})

CHOICES = Collection(name="choices", table="rm.choices", alias="c", params={**_OWNED, "q": Contains(("name",))})

# A tag is public once something public carries it (a public image or model); until then only its creator and
# admins see it, so a private upload's new tag names stay private (docs/catalog.md "Tags").
TAG_IS_PUBLIC = ("(EXISTS (SELECT 1 FROM rm.images ti WHERE ti.public AND ti.tag_ids @> ARRAY[t.id])"
                 " OR EXISTS (SELECT 1 FROM rm.models tm WHERE tm.public AND tm.tag_ids @> ARRAY[t.id]))")

TAGS = Collection(
    name="tags", table="rm.tags", public=TAG_IS_PUBLIC,
    params={"user": _OWNER, "user_id": _OWNER, "date": CreatedOn(), "q": Contains(("name",))},
)

USERS = Collection(
    name="users", table="rm.users", alias="u", visibility="everyone", scope="u.deleted_at IS NULL",
    params={"q": Contains(("name",)), "role": OneOf("role", ROLES), "date": CreatedOn()},
)

# The route adds `user=` = the caller when none is given: an admin too lists their own sessions by default.
SESSIONS = Collection(
    name="sessions", table="rm.sessions", alias="s", visibility="own",
    scope="s.ended_at IS NULL AND s.expires_at > now()", params={"user": _OWNER, "user_id": _OWNER},
)

# Runners (docs/runners.md): every logged-in caller sees all of them; their live status is joined in by the route
# (also for `status=`, query/routes/servers.py).
SERVERS = Collection(name="servers", table="rm.servers", alias="v", visibility="everyone",
                     params={"date": CreatedOn(), "q": Contains(("name",)), "status": LiveStatus()})
