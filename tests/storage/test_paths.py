from __future__ import annotations

import os.path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import BadRequest
from appliance.storage.paths import (
    object_key,
    project_bucket,
    split_object_key,
    validate_bucket_name,
    validate_logical_bucket,
    validate_object_key,
    validate_object_path,
    validate_prefix,
)


@pytest.mark.parametrize(
    ("path", "normalized"),
    [
        ("a.png", "a.png"),
        ("notes/2024/a.png", "notes/2024/a.png"),
        ("notes//a.png", "notes/a.png"),
        ("./notes/./a.png", "notes/a.png"),
        ("a b/ü é.txt", "a b/ü é.txt"),
        ("cafe\u0301.txt", "caf\u00e9.txt"),  # NFC: one spelling per name
        (".hidden", ".hidden"),
        ("...", "..."),
        ("a..b/c", "a..b/c"),
        ("%2e%2e/x", "%2e%2e/x"),  # no decoding here: that is a literal name
    ],
)
def test_valid_paths_are_normalized(path: str, normalized: str) -> None:
    assert validate_object_path(path) == normalized


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a/..",
        "..",
        "a\\b",
        "..\\x",
        "a\x00b",
        "a\nb",
        "a\x7fb",
        "a\u0085b",  # C1 control
        "a/",
        "/",
        ".",
        "./",
        "a" * 1025,
        "a/" + "b" * 256,
        "\ud800",  # lone surrogate
    ],
)
def test_invalid_paths_are_refused(path: str) -> None:
    with pytest.raises(BadRequest) as err:
        validate_object_path(path)
    assert err.value.code == "invalid_path"
    assert err.value.status == 400


def test_length_limit_counts_bytes() -> None:
    assert validate_object_path("é" * 127 + "/" + "é" * 127)
    with pytest.raises(BadRequest):
        validate_object_path("/".join(["é" * 120] * 5))  # 1204 bytes, 604 characters


@pytest.mark.parametrize("name", ["uploads", "private", "a", "0-x_y", "a" * 63])
def test_valid_logical_buckets(name: str) -> None:
    assert validate_logical_bucket(name) == name


@pytest.mark.parametrize("name", ["", "Uploads", "-x", "_x", "a" * 64, "a/b", "a.b", "ü", "a b", ".."])
def test_invalid_logical_buckets(name: str) -> None:
    with pytest.raises(BadRequest) as err:
        validate_logical_bucket(name)
    assert err.value.code == "invalid_bucket"


def test_object_keys() -> None:
    assert object_key("uploads", "notes//a.png") == "uploads/notes/a.png"
    assert validate_object_key("uploads/./a.png") == "uploads/a.png"
    assert split_object_key("uploads/notes/a.png") == ("uploads", "notes/a.png")
    with pytest.raises(BadRequest):
        object_key("uploads", "a" * 1020)  # whole key over S3's 1024 bytes
    for bad in ("uploads", "/uploads/a", "../uploads/a", "Uploads/a", "uploads/../x"):
        with pytest.raises(BadRequest):
            validate_object_key(bad)


def test_bucket_names() -> None:
    assert project_bucket("AbC123") == "proj-abc123"
    assert validate_bucket_name("proj-abc") == "proj-abc"
    for bad in ("proj_abc", "ab", "Proj-a", "proj-a.b", "-proj", "a" * 64):
        with pytest.raises(BadRequest):
            validate_bucket_name(bad)
    with pytest.raises(BadRequest):
        project_bucket("../x")


def test_prefixes() -> None:
    assert validate_prefix("") == ""
    assert validate_prefix("uploads/no") == "uploads/no"
    assert validate_prefix("uploads/") == "uploads/"
    for bad in ("/x", "uploads/../", "a\\b", "a\x00"):
        with pytest.raises(BadRequest):
            validate_prefix(bad)


@given(st.text(max_size=60))
def test_any_accepted_path_stays_inside_its_bucket(path: str) -> None:
    try:
        normalized = validate_object_path(path)
    except BadRequest:
        return
    assert validate_object_path(normalized) == normalized  # idempotent
    assert not normalized.startswith("/") and "\\" not in normalized
    assert ".." not in normalized.split("/") and "" not in normalized.split("/")
    root = "/srv/objects/proj-a/uploads"
    joined = os.path.normpath(os.path.join(root, normalized))
    assert joined.startswith(root + "/")


@given(st.lists(st.sampled_from(["a", "..", ".", "", "b\\c", "%2e", "\x00", "é"]), max_size=8))
def test_segment_soup_never_escapes(parts: list[str]) -> None:
    path = "/".join(parts)
    try:
        normalized = validate_object_path(path)
    except BadRequest:
        return
    root = "/srv/objects/proj-a/uploads"
    assert os.path.normpath(os.path.join(root, normalized)).startswith(root + "/")
