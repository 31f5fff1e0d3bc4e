"""Structured logs: one JSON object per line on stderr, secrets never included.

Call sites pass context with `extra={...}`; fields named like secrets are masked here as a last line of defence.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_SECRET_WORDS = ("password", "token", "secret", "authorization", "cookie", "api_key")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}


def _mask(key: str, value: Any) -> Any:
    if any(word in key.lower() for word in _SECRET_WORDS):
        return "[redacted]"
    return value


_CREDENTIAL_IN_URL = re.compile(r"([?&](?:token|ticket)=)[^&\s\"']*", re.IGNORECASE)


class RedactUrlCredentials(logging.Filter):
    """uvicorn logs each WebSocket handshake with its path and query string: `?token=` and `?ticket=` values
    become `[redacted]` before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_CREDENTIAL_IN_URL.sub(r"\1[redacted]", a) if isinstance(a, str) else a
                                for a in record.args)
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = _CREDENTIAL_IN_URL.sub(r"\1[redacted]", record.msg)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _mask(key, value)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would print query strings, which may carry ?token= for WebSockets.
    logging.getLogger("uvicorn.access").disabled = True
    handler.addFilter(RedactUrlCredentials())  # on the handler: it sees every logger's records, uvicorn.error's too
    logging.getLogger("nats").setLevel(logging.WARNING)
