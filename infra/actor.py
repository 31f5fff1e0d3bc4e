"""Who is calling: the one value every authorisation decision looks at."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user_id: int | None = None
    role: str = "anonymous"  # anonymous | user | admin
    session_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    def owns(self, owner_id: int | None) -> bool:
        return self.user_id is not None and owner_id == self.user_id


ANONYMOUS = Actor()
