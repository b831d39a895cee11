"""Every shell and HTTP example of docs/QUICKSTART.md and docs/USAGE.md, run against ``atlashub dev``.

Conventions (the docs follow them; see also the comment at the top of each document):

- ```` ```sh ```` / ```` ```bash ```` blocks run in order, in ONE shell state per document (variables
  set by a block are seen by the next), with ``set -euo pipefail`` and ``curl`` failing on any
  HTTP error (``--fail-with-body``): a block passes when it exits 0.
- ```` ```http ```` blocks (``METHOD /path``, headers, blank line, JSON body) are sent as they are;
  ``/v1/...`` goes to the gateway, ``/admin/...`` to the dashboard with the dev admin token. They
  pass on a 2xx answer, or on the status of a preceding ``<!-- expect: NNN -->`` comment. The key
  placeholders ``ah_sec_…`` / ``ah_pub_…`` stand for the project's secret / publishable key.
- A placeholder ``<words>`` in a run block is replaced by the most recent value of the JSON field
  named by its LAST word in an earlier answer of the same document: ``<project id>`` is the ``id``
  of the project just created, ``<uploadUrl>`` the signed upload URL. An unknown one fails the test.
- A block preceded by ``<!-- not-run -->`` or ``<!-- not-run: why -->`` (config files, responses,
  long-running commands) is skipped.

QUICKSTART runs from nothing but the dev instance, whose data dir is ``./.atlashub-dev`` of the
shell's working directory, as after ``./scripts/dev``: it creates its own project and keys. USAGE
runs with ``ATLASHUB_API_URL``, ``ATLASHUB_SECRET_KEY``, ``ATLASHUB_PUBLISHABLE_KEY``, ``DASH`` and
``TOKEN`` set for a fresh project holding the quickstart's ``notes`` table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RUN_LANGUAGES = frozenset({"sh", "bash", "http"})
_NOT_RUN = re.compile(r"<!--\s*not-run\b.*-->")
_EXPECT = re.compile(r"<!--\s*expect:\s*(\d{3})\s*-->")
_FENCE = re.compile(r"^```([\w-]*)\s*$")
_PLACEHOLDER = re.compile(r"<([A-Za-z][A-Za-z0-9_]*(?: [A-Za-z0-9_]+)*)>")
_KEY_PLACEHOLDERS = {"ah_sec_…": "ATLASHUB_SECRET_KEY", "ah_pub_…": "ATLASHUB_PUBLISHABLE_KEY"}
# The table every USAGE example uses: the quickstart's migration, checked to be in QUICKSTART.md.
NOTES_TABLE = (
    "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL, image_key text, "
    "done boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL DEFAULT now());"
)


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    run: bool
    expect_status: int | None = None


def extract_blocks(markdown: str) -> list[Block]:
    """Fenced blocks in order, with the directive of the comment line just before each."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        language = match.group(1).lower()
        expect = _EXPECT.fullmatch(previous)
        blocks.append(
            Block(
                language=language,
                code="\n".join(body) + "\n",
                line=start + 1,
                run=language in RUN_LANGUAGES and not _NOT_RUN.fullmatch(previous),
                expect_status=int(expect.group(1)) if expect else None,
            )
        )
        i += 1
    return blocks


def json_values(text: str) -> Iterator[Any]:
    """Every JSON object or array in ``text`` (answers printed back to back, mixed with other output)."""
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):
        if text[pos] in "{[":
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                pos += 1
                continue
            yield value
            pos = end
        else:
            pos += 1


@dataclass
class DocRun:
    """One document's run: its shell state, and the JSON fields seen so far for placeholders."""

    workdir: Path
    gateway_url: str
    dashboard_url: str
    admin_token: str
    env: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)

    def remember(self, output: str) -> None:
        for value in json_values(output):
            for obj in value if isinstance(value, list) else [value]:
                if isinstance(obj, dict):
                    for key, item in obj.items():
                        if isinstance(item, str | int) and not isinstance(item, bool):
                            self.fields[key] = str(item)

    def substitute(self, code: str, where: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1).split()[-1]
            if name not in self.fields:
                raise AssertionError(f"{where}: placeholder {match.group(0)} names no field of an earlier answer")
            value = self.fields[name]
            assert not re.search(r"[\"'`$\\\s]", value), f"{where}: unsafe value for {match.group(0)}"
            return value

        return _PLACEHOLDER.sub(replace, code)

    def run_shell(self, code: str, where: str) -> None:
        state = self.workdir / ".doc-shell-state"
        script = (
            f"set -a\n[ -f {state} ] && . {state}\nset -euo pipefail\n"
            'curl() { command curl --fail-with-body --max-time 30 "$@"; }\n'
            f"{code}\nexport -p > {state}\n"
        )
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (
            f"{where} exited {result.returncode}\n--- script\n{code}--- stdout\n{result.stdout}\n"
            f"--- stderr\n{result.stderr}"
        )
        self.remember(result.stdout)

    def shell_env(self) -> dict[str, str]:
        """The variables the shell state holds now (``export -p`` of the last block)."""
        state = self.workdir / ".doc-shell-state"
        if not state.exists():
            return {}
        out = subprocess.run(
            ["bash", "-c", f". {state}; env -0"], capture_output=True, text=True, check=True, env=self.env
        ).stdout
        return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)

    def run_http(self, block: Block, code: str, where: str) -> None:
        head, _, body = code.partition("\n\n")
        request_line, *header_lines = head.strip().splitlines()
        method, path = request_line.split()[:2]
        shell = {**self.env, **self.shell_env()}
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            value = value.strip()
            if value in _KEY_PLACEHOLDERS:
                value = shell[_KEY_PLACEHOLDERS[value]]
            headers[name.strip().lower()] = value
        if path.startswith("/admin/"):
            url = self.dashboard_url + path
            headers.setdefault("x-dev-admin-token", self.admin_token)
        else:
            url = self.gateway_url + path
        data = body.strip().encode() if body.strip() else None
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 (a local dev instance)
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        if block.expect_status is not None:
            assert status == block.expect_status, f"{where}: {method} {path} → {status} {text}"
        else:
            assert 200 <= status < 300, f"{where}: {method} {path} → {status} {text}"
        self.remember(text)

    def run_document(self, name: str) -> int:
        ran = 0
        for block in extract_blocks((DOCS / name).read_text()):
            if not block.run:
                continue
            where = f"docs/{name}:{block.line} ({block.language} block)"
            code = self.substitute(block.code, where)
            if block.language == "http":
                self.run_http(block, code, where)
            else:
                self.run_shell(code, where)
            ran += 1
        return ran


@dataclass
class DevInstance:
    workdir: Path
    info: dict[str, str]
    env: dict[str, str]


def _request(method: str, url: str, headers: dict[str, str], body: object = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json", **headers}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 (a local dev instance)
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def dev() -> Iterator[DevInstance]:
    """``atlashub dev`` with its data dir at ``WORKDIR/.atlashub-dev``, as ``./scripts/dev`` leaves it."""
    workdir = Path(tempfile.mkdtemp(prefix="atlashub-docs-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLASHUB_")}
    # The cron example targets hooks.example.com, allowed first as the doc says.
    daemon_env = {**env, "ATLASHUB_SCHEDULER_HTTP_ALLOWLIST": "hooks.example.com"}
    data = workdir / ".atlashub-dev"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "appliance",
            "dev",
            "--data-dir",
            str(data),
            "--gateway-port",
            "0",
            "--dashboard-port",
            "0",
        ],
        cwd=ROOT,
        env=daemon_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not (data / "dev.json").exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else "atlashub dev exited"
            assert time.monotonic() < deadline, "dev.json never appeared"
            time.sleep(0.1)
        info = json.loads((data / "dev.json").read_text())
        yield DevInstance(workdir=workdir, info=info, env=env)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def _doc_run(dev: DevInstance, name: str) -> DocRun:
    workdir = dev.workdir / name.removesuffix(".md").lower()
    workdir.mkdir()
    (workdir / ".atlashub-dev").symlink_to(dev.workdir / ".atlashub-dev")
    return DocRun(
        workdir=workdir,
        gateway_url=dev.info["gateway_url"],
        dashboard_url=dev.info["dashboard_url"],
        admin_token=dev.info["admin_token"],
        env=dict(dev.env),
    )


def test_extractor_reads_fences_and_directives() -> None:
    text = (
        "a\n<!-- not-run: why -->\n```sh\nexit 1\n```\n\n"
        "<!-- expect: 400 -->\n\n```http\nGET /x\n```\n```json\n{}\n```\n"
    )
    blocks = extract_blocks(text)
    assert [(b.language, b.run, b.expect_status, b.line) for b in blocks] == [
        ("sh", False, None, 3),
        ("http", True, 400, 9),
        ("json", False, None, 12),
    ]
    assert list(json_values('{"a": 1}[{"b": "x"}] hello {bad')) == [{"a": 1}, [{"b": "x"}]]


@pytest.mark.parametrize("name", ["QUICKSTART.md", "USAGE.md"])
def test_every_shell_block_is_run_or_marked(name: str) -> None:
    """A runnable-looking block either runs or says why not, so no example silently escapes the test."""
    blocks = [b for b in extract_blocks((DOCS / name).read_text()) if b.language in RUN_LANGUAGES]
    assert blocks, f"{name} has no shell or HTTP examples"
    assert sum(b.run for b in blocks) >= len(blocks) // 2, f"{name}: most examples are marked not-run"


def test_quickstart_examples_run_from_nothing(dev: DevInstance) -> None:
    assert NOTES_TABLE in (DOCS / "QUICKSTART.md").read_text(), (
        "QUICKSTART's notes table changed: update NOTES_TABLE, which the USAGE examples run against"
    )
    run = _doc_run(dev, "QUICKSTART.md")
    assert run.run_document("QUICKSTART.md") >= 6
    # The reader ends with rows in the table and the file in storage.
    shell = run.shell_env()
    rows = _request("GET", run.gateway_url + "/v1/db/notes", {"x-api-key": shell["ATLASHUB_SECRET_KEY"]})
    assert [r["body"] for r in rows] == ["hello"]


def test_usage_examples_run(dev: DevInstance) -> None:
    admin = {"x-dev-admin-token": dev.info["admin_token"]}
    dash = dev.info["dashboard_url"]
    project = _request("POST", dash + "/admin/api/projects", admin, {"name": "usage-examples"})
    _request(
        "POST",
        f"{dash}/admin/api/projects/{project['id']}/migrations",
        admin,
        {"migrations": [{"name": "0001_init.sql", "sql": NOTES_TABLE}]},
    )
    run = _doc_run(dev, "USAGE.md")
    run.env.update(
        ATLASHUB_API_URL=dev.info["gateway_url"],
        ATLASHUB_SECRET_KEY=project["secret_key"],
        ATLASHUB_PUBLISHABLE_KEY=project["publishable_key"],
        DASH=dash,
        TOKEN=dev.info["admin_token"],
    )
    run.fields["id"] = project["id"]
    assert run.run_document("USAGE.md") >= 10
