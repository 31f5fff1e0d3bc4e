"""Each collection's list table: the parameters it accepts, its sorts, its rows, who sees them.

API.md "Lists": `user` (also `user_id`), `tag`, `public`, `date`, `q` where a collection has those things;
images also `choice` and `like`; models also `status`, `type`, `base_model`. A parameter a collection does not
list here answers 422, so a client never believes a filter applied when it did not.
"""

from __future__ import annotations

from events.models import BASE_MODELS, MODEL_STATUSES, MODEL_TYPES
from events.users import ROLES
from query.filters import Contains, CreatedOn, Filter, Flag, InChoice, LikedBy, OneOf, OwnedBy, Tagged
from query.listing import Collection

_OWNER = OwnedBy()
_OWNED: dict[str, Filter] = {"user": _OWNER, "user_id": _OWNER, "public": Flag(), "date": CreatedOn()}

IMAGES = Collection(
    name="images", table="rm.images", alias="i", counters="rm.image_counts",
    params={**_OWNED, "tag": Tagged(), "q": Contains(("name", "prompt")), "choice": InChoice(), "like": LikedBy()},
    sorts=("date-", "date+", "likes"),
)

MODELS = Collection(
    name="models", table="rm.models", alias="m",
    params={**_OWNED, "tag": Tagged(), "q": Contains(("name", "trigger_words")),
            "status": OneOf("status", MODEL_STATUSES), "type": OneOf("type", MODEL_TYPES),
            "base_model": OneOf("base_model", BASE_MODELS)},
)

PARAMS = Collection(name="params", table="rm.params", params={**_OWNED, "q": Contains(("name",))})

DATASETS = Collection(name="datasets", table="rm.datasets", params={**_OWNED, "q": Contains(("name",))})

CHOICES = Collection(name="choices", table="rm.choices", alias="c", params={**_OWNED, "q": Contains(("name",))})

TAGS = Collection(
    name="tags", table="rm.tags", visibility="everyone",
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
