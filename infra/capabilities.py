"""What a capability may be called: it is a token of the work queue's subjects (`<prefix>-work.<capability>.<id>`),
named by base models an admin registers (command/base_models.py) and by the runners that serve them
(`AIDRAW_RUNNER_CAPABILITIES`, aidraw/runner_role.py)."""

from __future__ import annotations

import re

CAPABILITY = re.compile(r"[A-Za-z0-9_-]{1,64}")
