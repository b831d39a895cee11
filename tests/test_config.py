from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import Config, load_config, parse_listen
from appliance.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "atlashub.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(Path("/nonexistent/atlashub.toml"), env={}, use_file=False)
    assert config == Config()
    assert config.gateway.listen == "0.0.0.0:8080"
    assert config.dashboard.listen == "127.0.0.1:8081"


def test_toml_and_environment_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, '[node]\nname = "pi"\nroles = ["gateway"]\n[gateway]\nlisten = "127.0.0.1:9000"\n')
    env = {
        "ATLASHUB_GATEWAY_MAX_LIMIT": "500",
        "ATLASHUB_NODE_ROLES": "gateway, dashboard",
        "ATLASHUB_DASHBOARD_DEV_ADMIN_TOKEN_ENABLED": "true",
        "ATLASHUB_DEV_ADMIN_TOKEN": "not a config key, ignored",
    }
    config = load_config(path, env=env)
    assert config.node.name == "pi"
    assert config.node.roles == ("gateway", "dashboard")
    assert config.gateway.listen == "127.0.0.1:9000"
    assert config.gateway.max_limit == 500
    assert config.dashboard.dev_admin_token_enabled is True


def test_every_error_is_reported_at_once_with_its_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[node]\nroles = ['gateway', 'teleporter']\ncolour = 'red'\n"
        "[gateway]\nlisten = 'nonsense'\nmax_limit = 'many'\n"
        "[wat]\nx = 1\n"
        "[storage]\nbackend = 'tape'\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"ATLASHUB_POSTGRES_PORT": "five", "ATLASHUB_GATEWAY_NOPE": "1"})
    text = "\n".join(info.value.problems)
    for expected in (
        "[wat]: unknown section",
        "node.colour: unknown key",
        "gateway.max_limit: must be an integer",
        "postgres.port: must be an integer",
        "ATLASHUB_GATEWAY_NOPE: unknown key gateway.nope",
    ):
        assert expected in text
    # Type errors stop the build before cross-field checks; fix them and the rest appear together.
    path = write(
        tmp_path,
        "[node]\nroles = ['gateway', 'teleporter']\n[gateway]\nlisten = 'nonsense'\n[storage]\nbackend = 'tape'\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = "\n".join(info.value.problems)
    assert "node.roles: unknown role 'teleporter'" in text
    assert "gateway.listen: must be host:port" in text
    assert "storage.backend: must be 'fs' or 's3'" in text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[node\n", "invalid TOML"),
        ("node = 3\n", "[node]: must be a table"),
        ("[gateway]\ndefault_limit = true\n", "gateway.default_limit: must be an integer"),
        ("[logging]\nlevel = 'LOUD'\n", "logging.level"),
        ("[storage]\nbackend = 's3'\n", "storage.s3_endpoint: required"),
        ("[mesh]\nworker_apt_url = 'ftp://mirror/atlashub'\n", "mesh.worker_apt_url: must be an http(s):// URL"),
    ],
)
def test_bad_values(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert problem in "\n".join(info.value.problems)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", env={})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.0.0.0:8080", ("0.0.0.0", 8080)), ("[::1]:0", ("::1", 0)), ("localhost:65535", ("localhost", 65535))],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["8080", ":8080", "host:x", "host:70000"])
def test_parse_listen_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(value)
