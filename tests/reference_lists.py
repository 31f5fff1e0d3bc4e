"""API.md's list rules for images, written plainly in Python: the oracle the list engine is compared with.

Deliberately naive and independent of query/: it filters a list of objects with `all`/`any`, sorts with
`sorted`, slices pages, and does its own calendar arithmetic. A structured `ImageQuery` is what the property
tests generate; `to_query_string` renders it the way a client would (aliases, commas, repeated parameters,
`+` sometimes unencoded).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import quote


@dataclass
class Image:
    id: int
    user_id: int
    public: bool
    created_at: datetime  # UTC
    tag_ids: list[int]
    name: str = ""
    prompt: str = ""


@dataclass
class Tag:
    id: int
    name: str


@dataclass
class Choice:
    id: int
    user_id: int
    public: bool
    image_ids: list[int]


@dataclass
class Gallery:
    images: list[Image]
    tags: list[Tag]
    likes: set[tuple[int, int]]  # (user, image)
    choices: list[Choice]

    def likes_of(self, image: Image) -> int:
        return sum(1 for _, liked in self.likes if liked == image.id)


@dataclass(frozen=True)
class Caller:
    user_id: int | None = None
    admin: bool = False


@dataclass(frozen=True)
class DateSpec:
    """`A` (that period), `A+`, `A-`, or `A~B`; A and B are YYYY, YYYYMM or YYYYMMDD."""

    form: str  # "on" | "after" | "before" | "between"
    a: str
    b: str = ""

    def render(self, plus: str) -> str:
        return {"on": self.a, "after": self.a + plus, "before": self.a + "-", "between": f"{self.a}~{self.b}"}[
            self.form]


@dataclass
class ImageQuery:
    """Each filter: a list of repetitions (intersected), each a list of alternatives (united)."""

    users: list[list[int]] = field(default_factory=list)
    tags: list[list[int | str]] = field(default_factory=list)
    public: list[list[bool]] = field(default_factory=list)
    dates: list[list[DateSpec]] = field(default_factory=list)
    q: list[list[str]] = field(default_factory=list)
    choices: list[list[int]] = field(default_factory=list)
    likes: list[list[int]] = field(default_factory=list)
    sort: str = "date-"


# ---- the rules ----

def first_day(period: str) -> date:
    return date(int(period[:4]), int(period[4:6] or 1), int(period[6:8] or 1))


def last_day(period: str) -> date:
    year, month = int(period[:4]), int(period[4:6] or 12)
    if len(period) == 8:
        return first_day(period)
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return following - timedelta(days=1)


def date_matches(spec: DateSpec, day: date) -> bool:
    if spec.form == "on":
        return first_day(spec.a) <= day <= last_day(spec.a)
    if spec.form == "after":
        return day >= first_day(spec.a)
    if spec.form == "before":
        return day <= last_day(spec.a)
    return first_day(spec.a) <= day <= last_day(spec.b)


def can_see(caller: Caller, owner: int, public: bool) -> bool:
    return public or caller.admin or caller.user_id == owner


def tag_matches(gallery: Gallery, ref: int | str, image: Image) -> bool:
    if isinstance(ref, int):
        return ref in image.tag_ids
    return any(t.name.lower() == ref.lower() and t.id in image.tag_ids for t in gallery.tags)


def in_choice(gallery: Gallery, caller: Caller, choice_id: int, image: Image) -> bool:
    return any(c.id == choice_id and can_see(caller, c.user_id, c.public) and image.id in c.image_ids
               for c in gallery.choices)


def selected(gallery: Gallery, caller: Caller, query: ImageQuery, image: Image) -> bool:
    day = image.created_at.date()
    checks = [
        [[image.user_id == u for u in group] for group in query.users],
        [[tag_matches(gallery, t, image) for t in group] for group in query.tags],
        [[image.public == p for p in group] for group in query.public],
        [[date_matches(d, day) for d in group] for group in query.dates],
        [[text.lower() in image.name.lower() or text.lower() in image.prompt.lower() for text in group]
         for group in query.q],
        [[in_choice(gallery, caller, c, image) for c in group] for group in query.choices],
        [[(u, image.id) in gallery.likes for u in group] for group in query.likes],
    ]
    return can_see(caller, image.user_id, image.public) and all(any(g) for groups in checks for g in groups)


def expected_list(gallery: Gallery, caller: Caller, query: ImageQuery) -> list[int]:
    """Every selected image id, in the query's order."""
    chosen = [i for i in gallery.images if selected(gallery, caller, query, i)]
    if query.sort == "likes":
        chosen.sort(key=lambda i: (gallery.likes_of(i), i.created_at, i.id), reverse=True)
    else:
        chosen.sort(key=lambda i: (i.created_at, i.id), reverse=query.sort == "date-")
    return [i.id for i in chosen]


def expected_page(full: list[int], page: int, size: int) -> tuple[list[int], bool]:
    start = (page - 1) * size
    return full[start:start + size], start + size < len(full)


# ---- how a client writes it ----

def to_query_string(query: ImageQuery, rng: random.Random, page: int | None = None,
                    size: int | None = None) -> str:
    pairs: list[tuple[str, str]] = []

    def add(names: tuple[str, ...], groups: list[list[str]]) -> None:
        for group in groups:
            pairs.append((rng.choice(names), ",".join(quote(v, safe="~") for v in group)))

    add(("user", "user_id"), [[str(u) for u in g] for g in query.users])
    add(("tag",), [[str(t) for t in g] for g in query.tags])
    add(("public",), [[rng.choice(("true", "1")) if p else rng.choice(("false", "0")) for p in g]
                      for g in query.public])
    add(("q",), query.q)
    add(("choice",), [[str(c) for c in g] for g in query.choices])
    add(("like",), [[str(u) for u in g] for g in query.likes])
    for group in query.dates:  # the '+' either encoded or raw (then it arrives as a space)
        plus = rng.choice(("%2B", "+"))
        pairs.append(("date", ",".join(d.render(plus) for d in group)))
    if query.sort != "date-" or rng.random() < 0.3:
        pairs.append(("sort", query.sort.replace("+", rng.choice(("%2B", "+")))))
    if page is not None:
        pairs.append(("page", str(page)))
    if size is not None:
        pairs.append((rng.choice(("page_size", "pageSize")), str(size)))
    rng.shuffle(pairs)
    return "&".join(f"{k}={v}" for k, v in pairs)
