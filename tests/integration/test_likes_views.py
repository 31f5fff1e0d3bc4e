"""Likes and views over HTTP: idempotent likes with a projected count, and browsing history from logged-in GETs,
kept in a stream of its own."""

from __future__ import annotations

import concurrent.futures

import psycopg

from tests.catalog_accounts import People, Person, assert_problem, client_of
from tests.image_files import upload
from tests.image_support import eventually, log_end, wait_projected
from tests.system import System


def new_image(system: System, who: Person, public: bool = True) -> dict:
    with client_of(system, who) as client:
        answer = upload(client, fields={"public": "true" if public else "false"})
        assert answer.status_code == 201, answer.text
    wait_projected(system, answer.headers["X-Event-Sequence"])
    return dict(answer.json())


def likes_of(system: System, image: dict) -> int:
    with client_of(system, None) as client:
        return int(client.get(f"/api/images/{image['id']}").json()["likes"])


def like(system: System, who: Person, image: dict, method: str = "PUT") -> str:
    """Like (or with DELETE unlike); the sequence written ("0": nothing new), projected for everyone."""
    with client_of(system, who) as client:
        answer = client.request(method, f"/api/images/{image['id']}/like")
        assert answer.status_code == 204, answer.text
    sequence = answer.headers.get("X-Event-Sequence", "0")
    wait_projected(system, sequence)
    return sequence


def views(system: System, user_id: int | None, image_id: int) -> int:
    """Views of the image by that user (None: by anyone), as projected into rm.image_views."""
    with psycopg.connect(system.database_url) as conn:
        row = conn.execute("SELECT sum(views) FROM rm.image_views WHERE image_id = %s"
                           " AND (%s::bigint IS NULL OR user_id = %s)", (image_id, user_id, user_id)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# Likes

def test_a_like_counts_once_however_often_it_is_sent(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    first = like(system, people.bob, image)
    assert int(first) > 0 and likes_of(system, image) == 1
    assert like(system, people.bob, image) == "0"  # nothing new to record
    assert likes_of(system, image) == 1
    like(system, people.alice, image)
    assert likes_of(system, image) == 2


def test_unliking_takes_the_like_back_and_is_idempotent_too(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    like(system, people.bob, image)
    like(system, people.bob, image, "DELETE")
    assert likes_of(system, image) == 0
    assert like(system, people.bob, image, "DELETE") == "0"
    assert likes_of(system, image) == 0


def test_like_lists_and_likes_order(system: System, people: People) -> None:
    quiet, popular = new_image(system, people.alice), new_image(system, people.alice)
    like(system, people.bob, popular)
    like(system, people.admin, popular)
    like(system, people.bob, quiet)
    with client_of(system, people.bob) as client:
        liked = client.get("/api/images", params={"like": people.bob.id, "pageSize": 100}).json()["list"]
        assert {quiet["id"], popular["id"]} <= {i["id"] for i in liked}
        both = client.get("/api/images", params={"like": [people.bob.id, people.admin.id], "pageSize": 100,
                                                 "sort": "likes"}).json()
        ids = [i["id"] for i in both["list"]]
        assert popular["id"] in ids and quiet["id"] not in ids
        ranked = client.get("/api/images", params={"like": f"{people.bob.id},{people.admin.id}",
                                                   "sort": "likes", "pageSize": 100}).json()["list"]
        assert [i["likes"] for i in ranked] == sorted((i["likes"] for i in ranked), reverse=True)


def test_only_visible_images_can_be_liked_and_only_by_users(system: System, people: People) -> None:
    private = new_image(system, people.alice, public=False)
    with client_of(system, people.bob) as bob:
        assert_problem(bob.put(f"/api/images/{private['id']}/like"), 404)
        assert_problem(bob.delete(f"/api/images/{private['id']}/like"), 404)
        assert_problem(bob.put("/api/images/123456789/like"), 404)
    with system.client() as anonymous:
        assert_problem(anonymous.put(f"/api/images/{private['id']}/like"), 401)
    assert like(system, people.alice, private) != "0"
    assert like(system, people.admin, private) != "0"


def test_a_like_of_an_image_that_turned_private_can_still_be_taken_back(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    like(system, people.bob, image)
    with client_of(system, people.alice) as alice:
        assert alice.patch(f"/api/images/{image['id']}", json={"public": False}).status_code == 200
    with client_of(system, people.bob) as bob:
        assert_problem(bob.put(f"/api/images/{image['id']}/like"), 404)
    assert like(system, people.bob, image, "DELETE") != "0"
    with client_of(system, people.alice) as alice:
        assert alice.get(f"/api/images/{image['id']}").json()["likes"] == 0


def test_concurrent_likes_of_one_image_by_many_users_all_count(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    fans = [people.alice, people.bob, people.admin]

    def both(who: Person) -> str:
        return like(system, who, image)

    with concurrent.futures.ThreadPoolExecutor(len(fans)) as pool:
        list(pool.map(both, fans))
    assert likes_of(system, image) == 3


def test_one_user_liking_many_images_at_once_gets_no_conflict(system: System, people: People) -> None:
    images = [new_image(system, people.alice) for _ in range(20)]

    def put(image: dict) -> int:
        with client_of(system, people.bob) as bob:
            return bob.put(f"/api/images/{image['id']}/like").status_code

    with concurrent.futures.ThreadPoolExecutor(len(images)) as pool:
        assert list(pool.map(put, images)) == [204] * len(images)  # was 409 for some: one aggregate per user
    with client_of(system, people.bob) as bob:
        liked = bob.get("/api/images", params={"like": people.bob.id, "pageSize": 100}).json()
    assert {i["id"] for i in images} <= {i["id"] for i in liked["list"]}
    assert all(likes_of(system, image) == 1 for image in images)


# Views

def test_a_logged_in_detail_get_records_a_view_and_repeats_count(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    with client_of(system, people.bob) as bob:
        assert bob.get(f"/api/images/{image['id']}").status_code == 200
        assert eventually(lambda: views(system, people.bob.id, image["id"]) == 1)
        bob.get(f"/api/images/{image['id']}")
        assert eventually(lambda: views(system, people.bob.id, image["id"]) == 2)


def test_anonymous_gets_lists_and_refused_gets_record_no_view(system: System, people: People) -> None:
    private = new_image(system, people.alice, public=False)
    public = new_image(system, people.alice)
    with system.client() as anonymous:
        anonymous.get(f"/api/images/{public['id']}")
    with client_of(system, people.bob) as bob:
        assert bob.get(f"/api/images/{private['id']}").status_code == 404
        bob.get("/api/images", params={"user": people.alice.id})
        bob.get(f"/api/images/{public['id']}")  # a marker: once it shows, the GETs before it were projected
    assert eventually(lambda: views(system, people.bob.id, public["id"]) == 1)
    assert views(system, None, public["id"]) == 1 and views(system, None, private["id"]) == 0


def test_views_do_not_touch_the_event_log(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    before = log_end(system)
    with client_of(system, people.bob) as bob:
        for _ in range(5):
            bob.get(f"/api/images/{image['id']}")
    assert eventually(lambda: views(system, people.bob.id, image["id"]) == 5)
    assert log_end(system) == before


def test_a_deleted_images_views_are_gone(system: System, people: People) -> None:
    image = new_image(system, people.alice)
    with client_of(system, people.bob) as bob:
        bob.get(f"/api/images/{image['id']}")
    assert eventually(lambda: views(system, people.bob.id, image["id"]) == 1)
    with client_of(system, people.alice) as alice:
        assert alice.delete(f"/api/images/{image['id']}").status_code == 204
    assert eventually(lambda: views(system, people.bob.id, image["id"]) == 0)
