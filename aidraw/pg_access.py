"""Letting the embedded PostgreSQL's system user reach its binaries and its data, wherever the checkout is.

PostgreSQL refuses to run as root, so under root it runs as a system user of its own (aidraw/services.py). That
user must pass through every folder above the wheel's `pginstall/` (inside the checkout's venv) and above the
data folder. A checkout in root's home (0700 on Debian) or in a `mktemp -d` folder (0700) lets nobody else
through. For each such folder this grants search permission (x: pass through, not list) to that one user, as a
POSIX ACL entry, leaving the folder closed to everyone else. Where the file system has no ACLs, it falls back
to search permission for all (o+x) and says so in the log.
"""

from __future__ import annotations

import errno
import functools
import logging
import operator
import os
import struct
from pathlib import Path

log = logging.getLogger("aidraw.services")

_XATTR = "system.posix_acl_access"
_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _GROUP, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_NO_ID = 0xFFFFFFFF
_SEARCH = 0o1
_NO_ACLS = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


def _read_acl(folder: Path, mode: int) -> dict[tuple[int, int], int]:
    """(tag, id) -> permission bits: the folder's ACL, or the one its mode bits amount to."""
    try:
        raw = os.getxattr(folder, _XATTR)
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise
        return {(_USER_OBJ, _NO_ID): (mode >> 6) & 7, (_GROUP_OBJ, _NO_ID): (mode >> 3) & 7,
                (_OTHER, _NO_ID): mode & 7}
    entries = {}
    for offset in range(4, len(raw), 8):
        tag, perm, ident = struct.unpack_from("<HHI", raw, offset)
        entries[(tag, ident)] = perm
    return entries


def _grant_search(folder: Path, uid: int) -> None:
    """An ACL entry letting user `uid` pass through `folder`; the mask lets it take effect."""
    entries = _read_acl(folder, folder.stat().st_mode)
    entries[(_USER, uid)] = entries.get((_USER, uid), 0) | _SEARCH
    if (_MASK, _NO_ID) not in entries:  # a new mask lets through what the group class had
        entries[(_MASK, _NO_ID)] = functools.reduce(
            operator.or_, (perm for (tag, _), perm in entries.items() if tag in (_USER, _GROUP_OBJ, _GROUP)), 0)
    entries[(_MASK, _NO_ID)] |= _SEARCH
    packed = b"".join(struct.pack("<HHI", tag, perm, ident) for (tag, ident), perm in sorted(entries.items()))
    os.setxattr(folder, _XATTR, struct.pack("<I", _VERSION) + packed)


def _can_pass(folder: Path, uid: int, gid: int) -> bool:
    """Whether user `uid` (group `gid`) may pass through `folder` by its mode bits or its ACL entry for them."""
    info = folder.stat()
    if info.st_mode & 0o001 or (info.st_uid == uid and info.st_mode & 0o100):
        return True
    if info.st_gid == gid and info.st_mode & 0o010:
        return True
    try:
        entries = _read_acl(folder, info.st_mode)
    except OSError:
        return False
    mask = entries.get((_MASK, _NO_ID), 7)
    return bool(entries.get((_USER, uid), 0) & mask & _SEARCH)


def let_user_reach(path: Path, uid: int, gid: int) -> None:
    """Let user `uid` pass through every folder above `path` (and `path` itself), changing only those it cannot
    pass through yet."""
    opened_for_all = []
    for folder in [path, *path.parents]:
        if _can_pass(folder, uid, gid):
            continue
        try:
            _grant_search(folder, uid)
        except OSError as exc:
            if exc.errno not in _NO_ACLS:
                raise
            folder.chmod(folder.stat().st_mode | 0o001)
            opened_for_all.append(str(folder))
    if opened_for_all:
        log.warning("the file system has no ACLs: gave everyone search permission (o+x) on folders above the "
                    "embedded PostgreSQL's files so that its system user can reach them",
                    extra={"folders": opened_for_all})
