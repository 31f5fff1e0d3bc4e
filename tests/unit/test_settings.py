"""Settings from the environment: every value outside its documented range is refused with a message naming the
variable, the value and the range (docs/configuration.md), never accepted silently or left to crash later."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from infra.settings import LOG_LEVELS, Settings, SettingsError, ensure_data_dir

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AIDRAW_"):
            monkeypatch.delenv(name)


def refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env()
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_the_defaults_are_valid() -> None:
    settings = Settings.from_env()
    assert settings == Settings(data_dir=Path("./var"))


@pytest.mark.parametrize(("name", "value", "says"), [
    ("AIDRAW_PORT", "-1", "from 1 to 65535"),
    ("AIDRAW_PORT", "99999", "from 1 to 65535"),
    ("AIDRAW_PORT", "0", "from 1 to 65535"),
    ("AIDRAW_STREAM_REPLICAS", "0", "from 1 to 5"),
    ("AIDRAW_JSON_MAX_BYTES", "0", "1024 or more"),
    ("AIDRAW_JSON_MAX_BYTES", "1023", "1024 or more"),
    ("AIDRAW_UPLOAD_MAX_BYTES", "10", "1024 or more"),
    ("AIDRAW_UPLOAD_MAX_PIXELS", "0", "1 or more"),
    ("AIDRAW_READ_YOUR_WRITES_TIMEOUT", "-1", "from 0 to 315360000 (10 years)"),
    ("AIDRAW_READY_MAX_LAG", "-1", "0 or more"),
    ("AIDRAW_DUPLICATE_WINDOW", "0", "above 0"),
    ("AIDRAW_PROJECTOR_BATCH", "0", "1 or more"),
    ("AIDRAW_SESSION_TTL", "-5", "above 0"),
    ("AIDRAW_SESSION_TTL", "0", "above 0"),
    ("AIDRAW_SESSION_TTL", "1e300", "up to 315360000 (10 years)"),
    ("AIDRAW_SESSION_REFRESH", "-1", "above 0"),
    ("AIDRAW_LOGIN_MAX_FAILURES", "0", "1 or more"),
    ("AIDRAW_LOGIN_MAX_FAILURES_PER_ADDRESS", "-3", "1 or more"),
    ("AIDRAW_LOGIN_FAILURE_WINDOW", "0", "above 0"),
    ("AIDRAW_VIEWS_MAX_AGE", "0", "above 0"),
    ("AIDRAW_BLOB_SWEEP_INTERVAL", "-1", "above 0"),
    ("AIDRAW_BLOB_ORPHAN_AGE", "0", "from 60 to"),
])
def test_a_value_out_of_range_names_variable_value_and_range(monkeypatch: pytest.MonkeyPatch, name: str,
                                                             value: str, says: str) -> None:
    message = refused(monkeypatch, **{name: value})
    assert message.startswith(f"{name}={value!r} is out of range: use "), message
    assert says in message, message


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_duration_must_be_a_finite_number(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    assert "is not a finite number" in refused(monkeypatch, AIDRAW_SESSION_TTL=value)


def test_an_integer_too_large_to_use_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "is too large" in refused(monkeypatch, AIDRAW_READY_MAX_LAG="9" * 30)


def test_words_where_numbers_belong_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    assert refused(monkeypatch, AIDRAW_PORT="abc") == (
        "AIDRAW_PORT='abc' is not an integer; set it to an integer or unset it.")
    assert "is not a number" in refused(monkeypatch, AIDRAW_PORT="8000", AIDRAW_SESSION_TTL="long")


def test_an_unknown_log_level_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, AIDRAW_LOG_LEVEL="LOUD")
    assert message.startswith("AIDRAW_LOG_LEVEL='LOUD' is not a log level")
    assert all(level in message for level in LOG_LEVELS)
    monkeypatch.setenv("AIDRAW_LOG_LEVEL", "warning")
    assert Settings.from_env().log_level == "WARNING"


def test_a_session_refresh_not_below_the_lifetime_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(monkeypatch, AIDRAW_SESSION_TTL="60", AIDRAW_SESSION_REFRESH="60")
    assert "AIDRAW_SESSION_REFRESH=60 is not below AIDRAW_SESSION_TTL=60" in message
    monkeypatch.setenv("AIDRAW_SESSION_REFRESH", "59.5")
    assert Settings.from_env().session_refresh_s == 59.5


@pytest.mark.parametrize("value", ["a.b", "a b", "x>", ""])
def test_stream_names_and_prefixes_are_single_tokens(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    if not value:  # empty means the default
        monkeypatch.setenv("AIDRAW_STREAM", value)
        assert Settings.from_env().stream_name == "AIDRAW"
        return
    assert "is not a usable name" in refused(monkeypatch, AIDRAW_SUBJECT_PREFIX=value)


def test_values_at_the_edges_of_their_ranges_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AIDRAW_PORT": "65535", "AIDRAW_JSON_MAX_BYTES": "1024", "AIDRAW_READ_YOUR_WRITES_TIMEOUT": "0",
                        "AIDRAW_READY_MAX_LAG": "0", "AIDRAW_BLOB_ORPHAN_AGE": "60", "AIDRAW_SESSION_TTL": "3",
                        "AIDRAW_SESSION_REFRESH": "1", "AIDRAW_BLOB_SWEEP_INTERVAL": "0.5"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert (settings.port, settings.json_max_bytes, settings.read_your_writes_timeout_s) == (65535, 1024, 0.0)
    assert (settings.blob_orphan_age_s, settings.blob_sweep_interval_s) == (60.0, 0.5)


def test_every_documented_numeric_setting_has_a_documented_range() -> None:
    rows = [line.split(" | ") for line in DOCS.read_text().splitlines() if line.startswith("| `AIDRAW_")]
    numeric = [cells for cells in rows if re.fullmatch(r"`-?\d+(\.\d+)?`( \(.*\))?", cells[1])]
    assert len(numeric) >= 17
    for cells in numeric:
        assert re.search(r"\d", cells[2]), f"{cells[0]}: no range documented"


def test_a_data_folder_that_cannot_be_created_says_why(tmp_path: Path) -> None:
    ensure_data_dir(tmp_path / "new" / "var")
    assert (tmp_path / "new" / "var").is_dir()
    with pytest.raises(SettingsError, match=r"AIDRAW_DATA_DIR='/proc/nope': the folder cannot be created \(.+\)"):
        ensure_data_dir(Path("/proc/nope"))
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingsError, match="a file of that name is in the way"):
        ensure_data_dir(tmp_path / "file")


def test_the_url_allow_list_takes_names_and_networks_and_names_a_bad_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().url_allowed_hosts.names == frozenset()
    monkeypatch.setenv("AIDRAW_URL_ALLOWED_HOSTS", "files.corp.example, 10.0.0.0/8")
    allowed = Settings.from_env().url_allowed_hosts
    assert allowed.names == {"files.corp.example"} and [str(n) for n in allowed.networks] == ["10.0.0.0/8"]
    assert "'bad host!' is neither a host name nor a network" in refused(monkeypatch,
                                                                      AIDRAW_URL_ALLOWED_HOSTS="a.example,bad host!")


def test_trusted_proxies_are_addresses_or_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().trusted_proxies == ()
    monkeypatch.setenv("AIDRAW_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1")
    assert [str(n) for n in Settings.from_env().trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert "'proxy.example' is not an address or a network" in refused(
        monkeypatch, AIDRAW_TRUSTED_PROXIES="10.0.0.1,proxy.example")


def test_the_operators_token_is_long_enough_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().ops_token == ""
    for bad in ("short", "x" * 15, "has a space in it!!", "tab\there-and-more-chars"):
        message = refused(monkeypatch, AIDRAW_OPS_TOKEN=bad)
        assert "AIDRAW_OPS_TOKEN" in message and bad not in message
    token = "0123456789abcdef0123"
    monkeypatch.setenv("AIDRAW_OPS_TOKEN", token)
    settings = Settings.from_env()
    assert settings.ops_token == token and token not in repr(settings)


def test_runner_kinds_pick_inference_training_or_both(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from aidraw.runner_role import capabilities

    monkeypatch.setenv("AIDRAW_BASE_MODEL_PATH", str(tmp_path))
    monkeypatch.setenv("AIDRAW_RUNNER_CAPABILITIES", f"default,base-3={tmp_path}")
    assert sorted(capabilities(Settings.from_env())) == ["base-3", "default", "train-base-3", "train-default"]
    monkeypatch.setenv("AIDRAW_RUNNER_KINDS", " Train ")
    assert sorted(capabilities(Settings.from_env())) == ["train-base-3", "train-default"]
    monkeypatch.setenv("AIDRAW_RUNNER_KINDS", "inference")
    assert sorted(capabilities(Settings.from_env())) == ["base-3", "default"]
    for bad in ("gpu", ",", "inference,sleep"):
        assert "AIDRAW_RUNNER_KINDS" in refused(monkeypatch, AIDRAW_RUNNER_KINDS=bad)


@pytest.mark.parametrize("value", ["4GB", "256MB", "65536kB", " 1GB "])
def test_the_embedded_postgres_shared_buffers_take_postgres_sizes(monkeypatch: pytest.MonkeyPatch,
                                                                   value: str) -> None:
    monkeypatch.setenv("AIDRAW_PG_SHARED_BUFFERS", value)
    assert Settings.from_env().pg_shared_buffers == value.strip()


@pytest.mark.parametrize("value", ["4G", "lots", "1MB", "-5GB", "4gb", "0GB", "2.5GB", "4GB; drop", "²GB"])
def test_a_shared_buffers_that_is_no_postgres_size_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    message = refused(monkeypatch, AIDRAW_PG_SHARED_BUFFERS=value)
    assert "AIDRAW_PG_SHARED_BUFFERS" in message and "256MB or 4GB" in message


def test_shared_buffers_default_to_the_embedded_servers_own() -> None:
    assert Settings.from_env().pg_shared_buffers == "256MB"
