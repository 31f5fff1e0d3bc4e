"""Personal data on the command side: sealing a user's fields with their key, and the claims on names and
emails (subjects carry a keyed digest: events/personal.py `blind_index`)."""

from __future__ import annotations

from dataclasses import dataclass

from events.personal import KeyStore, blind_index, seal, unseal_or_none
from events.store.protocol import Claim

CLAIM_SECRET = "claims"  # the server secret's name in the key store


@dataclass(frozen=True)
class PersonalData:
    keys: KeyStore
    prefix: str

    def claim(self, namespace: str, value: str, user_id: int) -> Claim:
        digest = blind_index(self.keys.server_secret(CLAIM_SECRET), namespace, value)
        return Claim(subject=f"{self.prefix}.unique.{namespace}.{digest}", owner=str(user_id))

    def name_claim(self, name: str, user_id: int) -> Claim:
        return self.claim("username", name, user_id)

    def email_claim(self, email: str, user_id: int) -> Claim:
        return self.claim("email", email, user_id)

    def seal(self, user_id: int, field: str, value: str) -> str:
        return self.sealer(user_id).seal(field, value)

    def sealer(self, user_id: int) -> Sealer:
        """Seals one user's fields with one key lookup (the key is made on first use)."""
        return Sealer(self.keys.key(user_id) or self.keys.create_key(user_id), user_id)

    def opener(self, user_id: int) -> Opener:
        """Reads one user's sealed fields with one key lookup."""
        return Opener(self.keys.key(user_id), user_id)


@dataclass(frozen=True)
class Opener:
    key: bytes | None
    user_id: int

    def open(self, field: str, sealed: str) -> str | None:
        return unseal_or_none(self.key, self.user_id, field, sealed)


@dataclass(frozen=True)
class Sealer:
    key: bytes
    user_id: int

    def seal(self, field: str, value: str) -> str:
        return seal(self.key, self.user_id, field, value)
