"""`atlashub cloud token set`: the token is read from stdin (as `echo TOKEN |` or typing it gives
it, newline included), checked against the provider, stored sealed and never printed."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.cloud.settings import HETZNER, CloudSettings
from appliance.control.store import ControlPlane
from appliance.core import CONTROL_DB, ensure_node_keys
from appliance.crypto import SecretBox, generate_master_key
from tests.cloud.fake_hetzner import FakeHetzner
from tests.fixtures.cli import node_config


def prepared_node(tmp_path: Path) -> tuple[Path, Path]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    generate_master_key(state / "master.key")
    ensure_node_keys(state)
    return node_config(tmp_path / "atlashub.toml", state), state


async def token_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], config: Path, url: str, stdin: str
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = await asyncio.to_thread(main, ["cloud", "token", "set", "--api-url", url, "--config", str(config)])
    out = capsys.readouterr()
    return code, out.out, out.err


async def test_a_piped_token_is_checked_and_stored_sealed(
    tmp_path: Path, fake: tuple[FakeHetzner, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api, url = fake
    config, state = prepared_node(tmp_path)
    code, out, err = await token_set(monkeypatch, capsys, config, url, api.token + "\n")
    assert code == 0, err
    assert "sealed" in out and api.token not in out + err
    store = ControlPlane(state / CONTROL_DB)
    await store.open()
    try:
        saved = await CloudSettings(store, SecretBox((state / "master.key").read_bytes())).load(HETZNER)
        assert saved.token == api.token and saved.api_url.rstrip("/") == url.rstrip("/")
    finally:
        await store.close()
    assert api.token.encode() not in (state / CONTROL_DB).read_bytes()


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [("\n", "non-empty API token"), ("wrong-token\n", "refused the token")],
)
async def test_a_bad_token_is_refused_and_nothing_is_stored(
    tmp_path: Path,
    fake: tuple[FakeHetzner, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stdin: str,
    expected: str,
) -> None:
    _, url = fake
    config, state = prepared_node(tmp_path)
    code, out, err = await token_set(monkeypatch, capsys, config, url, stdin)
    assert code == 1 and expected in err and out == ""
    assert not (state / CONTROL_DB).exists() or b"cloud-token" not in (state / CONTROL_DB).read_bytes()
