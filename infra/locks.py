"""Every PostgreSQL advisory-lock id the system takes, in one place, so no two uses can collide.

Two key spaces exist and never meet: a single bigint key (`pg_advisory_xact_lock(k)`) and a pair of int4 keys
(`pg_advisory_lock(class, id)`); a pair shows in pg_locks as classid/objid with objsubid 2. The single keys below
guard one-time setup (concurrent first starts must not CREATE the same thing twice: IF NOT EXISTS alone races);
the classes name a family of locks, one per object (a projector, a blob key, a process manager's queue item).
"""

from __future__ import annotations

import zlib

# Single keys: setup that concurrent starts take turns at.
CHECKPOINTS_SETUP = 7263001  # public.projection_checkpoints
KEY_STORE_SETUP = 7263003  # the secrets schema (infra/keys.py)
READ_MODEL_SETUP = 7263004  # a read model's schema and tables (the migration step, a rebuild's fresh copy)
EXTENSIONS_SETUP = 7263010  # CREATE EXTENSION / CREATE OR REPLACE FUNCTION (pg_trgm, the image counters)
LOGIN_THROTTLE_SETUP = 7263020  # public.login_failures (infra/ratelimit.py)

# Classes of pair keys: (class, id of the object).
PROJECTOR_LEADER = 7263002  # the active instance of a projection: (class, crc32 of its checkpoint name)
BLOB_KEY = 7263010  # an upload (shared) against the blob reaper (exclusive): (class, crc32 of the blob key)
PROCESS_ITEM = 7263030  # a process manager working on one queued item: (class, crc32 of "<manager>:<item>")


def name_id(name: str) -> int:
    """A stable int4 for a name (a checkpoint name, a blob key); two names sharing one only wait for each other."""
    value = zlib.crc32(name.encode())
    return value - 2**32 if value >= 2**31 else value
