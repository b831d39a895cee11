from __future__ import annotations

import io
import json
import logging

import pytest

from appliance.logs import redact, setup_logging


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key ah_sec_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA used", "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"),
        ("x-api-key: ah_pub_abcdefghijklmnop", "abcdefghijklmnop"),
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("dsn postgresql://proj_x_app:S3cr3tPassw0rd@127.0.0.1:5432/proj_x", "S3cr3tPassw0rd"),
        ("password=hunter2hunter2 next", "hunter2hunter2"),
        ('{"password": "correct horse"}', "horse"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
    ],
)
def test_redact_removes_secrets(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_log_lines_are_json_and_redacted() -> None:
    stream = io.StringIO()
    setup_logging("INFO", "json", stream)
    logging.getLogger("t").info("created key %s for %s", "ah_sec_abcdefghijklmnopqrstuv", "proj_1")
    try:
        raise ValueError("password=topsecret99")
    except ValueError:
        logging.getLogger("t").exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["msg"] == "created key ah_sec_[REDACTED] for proj_1"
    assert lines[0]["level"] == "info"
    assert "topsecret99" not in stream.getvalue()
    assert "ValueError" in lines[1]["exc"]
