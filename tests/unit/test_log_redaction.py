"""Tokens and tickets in a URL never reach a log line (uvicorn logs each WebSocket handshake with its query)."""

from __future__ import annotations

import logging

from infra.logging import JsonFormatter, RedactUrlCredentials


def test_token_and_ticket_values_in_a_logged_url_are_redacted_and_the_rest_kept() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", "/api/tasks/7?page=2&token=123.s3cr3t&TICKET=abc-def"), None)
    assert RedactUrlCredentials().filter(record)
    line = JsonFormatter().format(record)
    assert "s3cr3t" not in line and "abc-def" not in line
    assert "/api/tasks/7?page=2&token=[redacted]&TICKET=[redacted]" in line
