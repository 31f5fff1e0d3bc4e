"""AIDRAW_NATS_URL names one NATS server or a cluster's nodes, comma-separated: every connection gets a list of
servers (nats-py reads a str as one server), and a value that names no usable server is refused at start, said
without the password in it."""

from __future__ import annotations

import os

import pytest

from events.nats_urls import NatsUrlError, nats_servers, redact_url
from infra.settings import Settings, SettingsError

CLUSTER = ("nats://aidraw:pw1@nats-1:4222,nats://aidraw:pw1@nats-2:4222, nats://aidraw:pw1@nats-3:4222 ")


def test_one_url_is_a_list_of_one() -> None:
    assert nats_servers("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]


def test_a_cluster_is_split_on_commas_in_order_with_blanks_stripped() -> None:
    assert nats_servers(CLUSTER) == ["nats://aidraw:pw1@nats-1:4222", "nats://aidraw:pw1@nats-2:4222",
                                     "nats://aidraw:pw1@nats-3:4222"]
    assert nats_servers(" tls://a.example ,\tnats://[::1]:4222") == ["tls://a.example", "nats://[::1]:4222"]


@pytest.mark.parametrize(("value", "says"), [
    ("", "no NATS server named"),
    (" , ,", "no NATS server named"),
    ("nats://a:4222,", "server 2 of 2 is empty"),
    ("nats://a:4222,,nats://b:4222", "server 2 of 3 is empty"),
    ("http://a:4222", "is not a nats:// or tls:// URL"),
    ("nats://a:4222,ws://b:80", "server 2 of 2, 'ws://b:80', is not a nats:// or tls:// URL"),
    ("a:4222", "is not a nats:// or tls:// URL"),
    ("nats://:4222", "names no host"),
    ("nats://a:port", "has no port from 1 to 65535"),
    ("nats://a:99999", "has no port from 1 to 65535"),
    ("nats://a:0", "has no port from 1 to 65535"),
    ("nats://a:4222/path", "is not nats://host[:port]"),
    ("nats://a:4222?x=1", "is not nats://host[:port]"),
])
def test_a_value_naming_no_usable_server_is_refused(value: str, says: str) -> None:
    with pytest.raises(NatsUrlError) as raised:
        nats_servers(value)
    assert says in str(raised.value), raised.value


def test_a_refusal_never_repeats_the_password() -> None:
    for value in ("nats://u:hunter22@a:4222,http://u:hunter22@b:4222", "nats://u:hunter22@a:x",
                  "nats://u:hunter22@a/p"):
        with pytest.raises(NatsUrlError) as raised:
            nats_servers(value)
        assert "hunter22" not in str(raised.value), raised.value


def test_redaction_hides_users_passwords_and_tokens_of_every_server() -> None:
    shown = redact_url(CLUSTER + ",nats://s3cr3t-token@[::1]:4223,nats://plain:4222")
    assert "pw1" not in shown and "aidraw" not in shown and "s3cr3t" not in shown
    assert shown == ("nats://***@nats-1:4222,nats://***@nats-2:4222,nats://***@nats-3:4222,"
                     "nats://***@[::1]:4223,nats://plain:4222")
    assert redact_url("nats://u:pw@host:notaport") == "(unreadable URL)"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("AIDRAW_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_settings_take_a_cluster_and_refuse_a_bad_value_at_start(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().nats_url == ""  # the embedded server
    clean_env.setenv("AIDRAW_NATS_URL", CLUSTER)
    assert Settings.from_env().nats_url == CLUSTER.strip()
    clean_env.setenv("AIDRAW_NATS_URL", "nats://aidraw:pw1@nats-1:4222,https://aidraw:pw1@nats-2:4222")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    message = str(raised.value)
    assert message.startswith("AIDRAW_NATS_URL: server 2 of 2, 'https://***@nats-2:4222', is not a nats:// or "
                              "tls:// URL. Set nats://host:4222"), message
    assert "pw1" not in message and "\n" not in message
    clean_env.setenv("AIDRAW_NATS_URL", " , ")
    with pytest.raises(SettingsError, match="AIDRAW_NATS_URL: no NATS server named"):
        Settings.from_env()
