"""A synthetic gallery appended through the real event path: the command side's aggregates and event classes,
saved by the event store (events/store/jetstream.py) as atomic batches of up to 1000 messages.

Distributions, loosely like a public image site: owners and tags Zipf-distributed (a few users upload most
images; a few tags are on most tagged images), 0-5 tags an image, 90% public, creation dates over three years
with more recent days busier, prompts of 8-20 words drawn Zipf-wise from an SD-prompt vocabulary, likes on
popular public images by Zipf-distributed users, featured collections of 5-500 public images.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from command.app import CommandApp
from command.choices import Choice
from command.claims import claim
from command.images import Image
from command.likes import Likes
from command.tags import Tag
from events.choices import ChoiceCreated
from events.ids import aggregate_uuid, new_id, split_uuid
from events.images import ImageUploaded
from events.likes import LikesStarted
from events.tags import TagCreated

MAX_MESSAGES = 1000  # per atomic batch (JetStream's limit)
_SHA = hashlib.sha256(b"bench picture").hexdigest()
BLOB_KEY = f"{_SHA[:2]}/{_SHA[2:4]}/{_SHA}.png"  # every image shows the same (content-addressed) picture
START = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
WORDS = (
    "portrait of a woman, landscape, mountains, sunset, cinematic lighting, highly detailed, 8k, octane render,"
    " digital painting, artstation, concept art, sharp focus, illustration, fantasy, castle, dragon, forest,"
    " river, city at night, neon, cyberpunk, steampunk, watercolor, oil painting, anime, studio ghibli, cat, dog,"
    " astronaut, spaceship, nebula, galaxy, ocean, waves, lighthouse, storm, rain, snow, winter, autumn leaves,"
    " flowers, garden, cottage, medieval, knight, armor, sword, wizard, magic, glowing, ethereal, dreamy, soft"
    " light, volumetric fog, golden hour, bokeh, macro, photorealistic, unreal engine, trending, masterpiece,"
    " best quality, ultra detailed, intricate, elegant, symmetrical, vibrant colors, pastel, monochrome, noir,"
    " surreal, abstract, minimalism, isometric, low poly, pixel art, vaporwave, retro, futuristic, robot, mech,"
    " samurai, temple, desert, dunes, jungle, waterfall, island, beach, boat, train, street, market, cafe,"
    " library, books, candle, moon, stars, aurora, volcano, crystal, gemstone, butterfly, owl, fox, wolf, horse"
).replace(",", "").split()
WORDS = list(dict.fromkeys(WORDS))  # distinct: the first ones are also tag names


class Zipf:
    """Ranks 0..n-1 with probability proportional to 1 / (rank + 1) ** s."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        self.rng = rng
        self.cumulative = list(itertools.accumulate(1.0 / (rank + 1) ** s for rank in range(n)))

    def __call__(self) -> int:
        return bisect.bisect(self.cumulative, self.rng.random() * self.cumulative[-1])


@dataclass
class Loaded:
    """What the loader made, for the queries to pick realistic arguments from."""

    user_ids: list[int]  # by upload rank: user_ids[0] uploads most
    tag_ids: list[int]  # by popularity
    tag_names: list[str]
    liker_ids: list[int]  # by number of likes given
    choice_ids: list[int]  # the public collections, largest first
    image_count: int = 0
    like_count: int = 0
    events: int = 0
    last_sequence: int = 0
    append_s: float = 0.0
    public_image_ids: list[int] = field(default_factory=list, repr=False)


def _number(aggregate: Any) -> int:
    split = split_uuid(aggregate.id)
    assert split is not None
    return split[1]


class Appender:
    """Saves aggregates in atomic batches of at most MAX_MESSAGES messages."""

    def __init__(self, app: CommandApp) -> None:
        self.app = app
        self.pending: list[Any] = []
        self.claims: list[Any] = []
        self.messages = 0
        self.events = 0
        self.last = 0

    def add(self, aggregate: Any, claims: Sequence[Any] = ()) -> None:
        size = len(aggregate.pending_events) + len(claims)
        if self.messages + size > MAX_MESSAGES:
            self.flush()
        self.pending.append(aggregate)
        self.claims += claims
        self.messages += size

    def flush(self) -> None:
        if self.pending:
            self.events += sum(len(a.pending_events) for a in self.pending)
            self.last = self.app.store(*self.pending, claims=self.claims) or self.last
        self.pending, self.claims, self.messages = [], [], 0


def _tags(appender: Appender, count: int) -> tuple[list[int], list[str]]:
    ids, names = [], []
    for rank in range(count):
        name = WORDS[rank] if rank < len(WORDS) else f"{WORDS[rank % len(WORDS)]}-{rank}"
        tag = Tag._create(TagCreated, id=aggregate_uuid("tag", new_id()), name=name, user_id=None)
        appender.add(tag, [claim(appender.app.settings.subject_prefix, "tagname", name, str(_number(tag)))])
        ids.append(_number(tag))
        names.append(name)
    return ids, names


def _images(appender: Appender, count: int, users: list[int], tags: list[int], rng: random.Random) -> Iterator[
        tuple[int, bool]]:
    owner, tag, word = Zipf(len(users), 1.1, rng), Zipf(len(tags), 1.0, rng), Zipf(len(WORDS), 0.9, rng)
    tag_counts = [0, 1, 1, 2, 2, 2, 3, 3, 4, 5]
    for _ in range(count):
        created = START + SPAN * rng.random() ** 0.6  # more recent days are busier
        image = Image._create(
            ImageUploaded, id=aggregate_uuid("image", new_id()), timestamp=created, user_id=users[owner()],
            name=" ".join(WORDS[word()] for _ in range(2)), prompt=" ".join(WORDS[word()] for _ in
                                                                            range(rng.randint(8, 20))),
            negative_prompt="blurry, lowres", width=512, height=512, num_inference_steps=30, guidance_scale=7.5,
            scheduler="DDIM", seed=rng.randrange(2**32), from_image=None, model_id=None, loras=[],
            blob_key=BLOB_KEY, thumbnail_key=None, content_type="image/png", public=rng.random() < 0.9,
            tag_ids=sorted({tags[tag()] for _ in range(rng.choice(tag_counts))}), task_id=None, descriptor=None)
        appender.add(image)
        yield _number(image), image.public


def _likes(appender: Appender, count: int, users: list[int], images: list[int], rng: random.Random) -> list[int]:
    """`count` likes of popular public images by Zipf-distributed users; the likers, most active first."""
    liker, liked = Zipf(len(users), 1.0, rng), Zipf(len(images), 0.8, rng)
    order = rng.sample(images, len(images))  # popularity is not creation order
    given: dict[int, set[int]] = {}
    for _ in range(count):
        given.setdefault(users[liker()], set()).add(order[liked()])
    for user, image_ids in given.items():
        likes = Likes._create(LikesStarted, id=aggregate_uuid("likes", user), user_id=user)
        for image_id in image_ids:
            likes.like(image_id)
            if len(likes.pending_events) == MAX_MESSAGES:
                appender.add(likes)
                appender.flush()
        if likes.pending_events:
            appender.add(likes)
    return sorted(given, key=lambda u: -len(given[u]))


def _choices(appender: Appender, count: int, users: list[int], images: list[int], rng: random.Random) -> list[int]:
    made = []
    owner = Zipf(len(users), 1.1, rng)
    for _ in range(count):
        size = min(500, int(5 / rng.random() ** 0.7))
        items = [{"image_id": i, "weight": round(rng.random(), 3)} for i in rng.sample(images, size)]
        choice = Choice._create(ChoiceCreated, id=aggregate_uuid("choice", new_id()), user_id=users[owner()],
                                name=" ".join(rng.sample(WORDS, 2)), public=rng.random() < 0.8, items=items)
        appender.add(choice)
        if choice.public:
            made.append((size, _number(choice)))
    return [number for _, number in sorted(made, reverse=True)]


def load_gallery(app: CommandApp, first_user: int, images: int, seed: int = 1) -> Loaded:
    """Append the whole gallery; `first_user` (a real account) is the most prolific owner. One million images
    come with 20,000 owners, 2,000 tags, 500,000 likes and 2,000 collections; smaller galleries in proportion."""
    users, tags = max(200, images // 50), max(100, min(2000, images // 200))
    likes, choices = images // 2, max(20, images // 500)
    rng = random.Random(seed)
    started = time.perf_counter()
    appender = Appender(app)
    user_ids = [first_user, *range(1_000_001, 1_000_000 + users)]
    tag_ids, tag_names = _tags(appender, tags)
    public = [number for number, is_public in _images(appender, images, user_ids, tag_ids, rng) if is_public]
    liker_ids = _likes(appender, likes, user_ids, public, rng)
    choice_ids = _choices(appender, choices, user_ids, public, rng)
    appender.flush()
    return Loaded(user_ids=user_ids, tag_ids=tag_ids, tag_names=tag_names, liker_ids=liker_ids,
                  choice_ids=choice_ids, image_count=images, like_count=likes, events=appender.events,
                  last_sequence=appender.last, append_s=time.perf_counter() - started, public_image_ids=public)
