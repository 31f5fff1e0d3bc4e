"""The pure write plan (events/store/writeplan.py): what one append sends and how it answers a refusal,
without a server. `StoredMsg`s stand for the last messages a recorder would have read."""

from __future__ import annotations

import json
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, ProgrammingError, StoredEvent

from events.store import batch as jsbatch
from events.store.batch import MAX_BATCH, JetStreamAPIError
from events.store.claims import CLAIM_HEADER, HELD, RELEASED, Claim, RequestKey, idempotency_subject
from events.store.directget import StoredMsg
from events.store.errors import ClaimConflict, DuplicateRequest
from events.store.writeplan import (
    EXPECTED,
    MAX_CONFLICTS,
    VERSION,
    VersionCache,
    WritePlan,
    on_refusal,
    plan_write,
)

P = "aidraw"


def ev(oid: UUID, version: int) -> StoredEvent:
    return StoredEvent(originator_id=oid, originator_version=version, topic="t", state=b"{}")


def subject(oid: UUID | str) -> str:
    return f"{P}.es.{UUID(str(oid)).hex}"


def plan(events: list[StoredEvent], claims: list[Claim] | None = None, releases: list[Claim] | None = None,
         key: str | RequestKey | None = None) -> WritePlan:
    return plan_write(P, events, [subject(e.originator_id) for e in events], claims or [], releases or [], key)


def held(subj: str, owner: str, seq: int) -> StoredMsg:
    return StoredMsg(subj, seq, {CLAIM_HEADER: HELD}, owner.encode())


def event_msg(oid: UUID, version: int, seq: int) -> StoredMsg:
    return StoredMsg(subject(oid), seq, {VERSION: str(version)}, b"{}")


NAME = f"{P}.unique.tagname.abc"


def test_the_first_event_of_a_subject_expects_the_cached_sequence_and_the_rest_expect_nothing() -> None:
    a = uuid4()
    cache = VersionCache()
    cache.remember(subject(a), 3, 41)
    msgs = plan([ev(a, 4), ev(a, 5)]).messages(cache)
    assert [m.headers.get(EXPECTED) for m in msgs] == ["41", None]


def test_an_unknown_subject_is_expected_empty() -> None:
    msgs = plan([ev(uuid4(), 1)]).messages(VersionCache())
    assert msgs[0].headers[EXPECTED] == "0"


def test_a_version_not_above_the_cached_one_is_refused_before_sending() -> None:
    a = uuid4()
    cache = VersionCache()
    cache.remember(subject(a), 2, 9)
    with pytest.raises(IntegrityError):
        plan([ev(a, 2)]).messages(cache)


@pytest.mark.parametrize("versions", [[2, 1], [1, 1]])
def test_versions_within_one_write_must_rise(versions: list[int]) -> None:
    a = uuid4()
    with pytest.raises(IntegrityError):
        plan([ev(a, v) for v in versions])


def test_claims_and_the_idempotency_record_follow_the_events() -> None:
    a = uuid4()
    msgs = plan([ev(a, 1)], claims=[Claim(NAME, "7")], key=RequestKey("k", "digest")).messages(VersionCache())
    assert [m.subject for m in msgs] == [subject(a), NAME, idempotency_subject(P, "k")]
    assert msgs[1].headers == {CLAIM_HEADER: HELD, EXPECTED: "0"} and msgs[1].body == b"7"
    record = msgs[2]
    assert json.loads(record.body) == {"events": [[str(a), 1]], "request": "digest"}
    assert record.headers[EXPECTED] == "0"
    assert record.headers["Nats-Msg-Id"] == idempotency_subject(P, "k").rsplit(".", 1)[1]  # a hash, not "k"


def test_a_claim_held_by_another_owner_is_a_conflict() -> None:
    p = plan([ev(uuid4(), 1)], claims=[Claim(NAME, "7")])
    with pytest.raises(ClaimConflict) as refused:
        p.after_conflict({NAME: held(NAME, "8", 12)}, VersionCache())
    assert refused.value.owner == "8"


def test_a_claim_already_ours_is_not_sent_again() -> None:
    p = plan([ev(uuid4(), 1)], claims=[Claim(NAME, "7")])
    p.claims_seen({NAME: held(NAME, "7", 12)})
    assert [m.subject for m in p.messages(VersionCache())] == [p.subjects[0]]


def test_a_claim_freed_since_expects_the_release_sequence() -> None:
    p = plan([], claims=[Claim(NAME, "7")])
    p.claims_seen({NAME: StoredMsg(NAME, 20, {CLAIM_HEADER: RELEASED}, b"8")})
    assert p.messages(VersionCache())[0].headers[EXPECTED] == "20"


def test_only_the_holder_releases() -> None:
    p = plan([], releases=[Claim(NAME, "7")])
    p.claims_seen({NAME: held(NAME, "8", 5)})
    assert p.messages(VersionCache()) == []
    mine = plan([], releases=[Claim(NAME, "7")])
    mine.claims_seen({NAME: held(NAME, "7", 5)})
    [release] = mine.messages(VersionCache())
    assert release.headers == {CLAIM_HEADER: RELEASED, EXPECTED: "5"}


def test_after_a_conflict_a_newer_version_is_retried_with_the_fresh_sequence() -> None:
    a = uuid4()
    cache = VersionCache()
    p = plan([ev(a, 3)])
    p.after_conflict({subject(a): event_msg(a, 2, 30)}, cache)
    assert p.messages(cache)[0].headers[EXPECTED] == "30"


def test_after_a_conflict_a_taken_version_is_refused() -> None:
    a = uuid4()
    with pytest.raises(IntegrityError):
        plan([ev(a, 2)]).after_conflict({subject(a): event_msg(a, 2, 30)}, VersionCache())


def test_after_a_conflict_an_existing_record_is_a_duplicate_naming_the_first_write() -> None:
    a = uuid4()
    idem = idempotency_subject(P, "k")
    first = StoredMsg(idem, 8, {}, json.dumps({"events": [[str(a), 1]], "request": "d1"}).encode())
    with pytest.raises(DuplicateRequest) as repeated:
        plan([ev(uuid4(), 1)], key=RequestKey("k", "d2")).after_conflict({idem: first}, VersionCache())
    assert repeated.value.events == [(a, 1)] and repeated.value.sequence == 8
    assert not repeated.value.same_request("d2")


def test_stored_gives_the_events_sequences_and_remembers_each_subjects_last() -> None:
    a, b = uuid4(), uuid4()
    cache = VersionCache()
    p = plan([ev(a, 1), ev(b, 1), ev(a, 2)], claims=[Claim(NAME, "1")])
    assert p.stored(cache, last_seq=14, count=4) == [11, 12, 13]
    assert cache.get(subject(a)) == (2, 13) and cache.get(subject(b)) == (1, 12)


def test_what_cannot_be_one_write_is_a_programming_error() -> None:
    with pytest.raises(ProgrammingError):
        plan([], claims=[Claim(NAME, "1"), Claim(NAME, "2")])  # two owners
    with pytest.raises(ProgrammingError):
        plan([], claims=[Claim(NAME, "1")], releases=[Claim(NAME, "1")])
    with pytest.raises(ProgrammingError):
        plan([], claims=[Claim("elsewhere.unique.x", "1")])
    a = uuid4()
    with pytest.raises(ProgrammingError):
        plan([ev(a, v) for v in range(1, MAX_BATCH + 2)])


def refusal(code: int) -> JetStreamAPIError:
    return JetStreamAPIError(400, code, "refused")


def test_refusals_are_retried_or_answered() -> None:
    assert on_refusal(refusal(jsbatch.WRONG_LAST_SEQUENCE), 0, 0) == "conflict"
    assert on_refusal(refusal(jsbatch.BATCH_DUPLICATE_MSG_ID), 0, 0) == "conflict"
    assert on_refusal(refusal(jsbatch.BATCH_INCOMPLETE_TOO_MANY), 0, 0) == "busy"
    with pytest.raises(IntegrityError):
        on_refusal(refusal(jsbatch.WRONG_LAST_SEQUENCE), MAX_CONFLICTS - 1, 0)
    with pytest.raises(IntegrityError):
        on_refusal(refusal(jsbatch.BATCH_EXPECTED_SEQ_NOT_FIRST), 0, 0)
    with pytest.raises(OperationalError):
        on_refusal(refusal(jsbatch.BATCH_INCOMPLETE_TOO_MANY), 0, 5)
    for code in (jsbatch.BATCH_TOO_LARGE, jsbatch.BATCH_DISABLED):
        with pytest.raises(ProgrammingError):
            on_refusal(refusal(code), 0, 0)
    with pytest.raises(OperationalError):
        on_refusal(refusal(99999), 0, 0)
