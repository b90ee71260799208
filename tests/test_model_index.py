"""Release index model (``asfaload.index.json``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asfaload.errors import FormatError
from asfaload.model import PublishedFile, ReleaseIndex

SHA256 = "ab" * 32
SHA512 = "cd" * 64


def doc() -> dict[str, Any]:
    return {
        "mirroredOn": "2026-02-01T10:00:00.123456789Z",
        "publishedOn": "2024-01-01T00:00:00Z",
        "version": 1,
        "publishedFiles": [
            {
                "fileName": "tool.tar.gz",
                "algo": "Sha256",
                "source": "https://github.com/o/r/releases/download/v1/tool.tar.gz",
                "hash": SHA256,
            },
            {
                "fileName": "tool.zip",
                "algo": "Sha512",
                "source": "https://x/tool.zip",
                "hash": SHA512,
            },
        ],
    }


def test_parse_valid_index_and_keep_raw():
    raw = json.dumps(doc(), indent=4).encode() + b"\n\n"
    idx = ReleaseIndex.from_bytes(raw)
    assert idx.raw == raw
    assert idx.version == 1
    assert idx.mirrored_on == "2026-02-01T10:00:00.123456789Z"
    assert [f.file_name for f in idx.published_files] == ["tool.tar.gz", "tool.zip"]
    f = idx.find("tool.tar.gz")
    assert f is not None and f.algo == "Sha256" and f.digest == bytes.fromhex(SHA256)
    assert idx.find("missing") is None


def test_to_bytes_field_order_and_round_trip():
    idx = ReleaseIndex.from_dict(doc())
    text = idx.to_bytes().decode()
    assert text.endswith("}\n")
    loaded = json.loads(text)
    assert list(loaded) == ["mirroredOn", "publishedOn", "version", "publishedFiles"]
    assert list(loaded["publishedFiles"][0]) == ["fileName", "algo", "source", "hash"]
    assert loaded == doc()
    assert ReleaseIndex.from_bytes(idx.to_bytes()) == idx  # raw equals to_bytes for both


def test_create_defaults_published_on_to_mirrored_on():
    files = [PublishedFile("a.bin", "Md5", "https://x/a.bin", "0" * 32)]
    idx = ReleaseIndex.create(files, mirrored_on=1700000000)
    assert idx.mirrored_on == idx.published_on == "2023-11-14T22:13:20Z"
    assert idx.raw == idx.to_bytes()
    idx2 = ReleaseIndex.create(files, 1700000000, "2020-01-01T00:00:00Z")
    assert idx2.published_on == "2020-01-01T00:00:00Z"


def test_hash_is_normalised_to_lower_case():
    f = PublishedFile("a", "Sha1", "https://x/a", "AB" * 20)
    assert f.hash == "ab" * 20


def test_unknown_fields_are_preserved():
    d = doc()
    d["size"] = 3
    d["publishedFiles"][0]["signature"] = None
    out = ReleaseIndex.from_dict(d).to_dict()
    assert out == d


def _with(path: list[Any], value: Any, delete: bool = False) -> dict[str, Any]:
    d = doc()
    target: Any = d
    for p in path[:-1]:
        target = target[p]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


INVALID = [
    ("version 2", _with(["version"], 2), "unsupported version"),
    ("version bool", _with(["version"], True), "version must be an integer"),
    ("version missing", _with(["version"], None, True), "'version'"),
    ("mirroredOn not time", _with(["mirroredOn"], "soon"), "mirroredOn"),
    ("publishedOn number", _with(["publishedOn"], 5), "publishedOn must be a string"),
    ("files not list", _with(["publishedFiles"], {}), "JSON array"),
    ("algo unknown", _with(["publishedFiles", 0, "algo"], "sha256"), "unsupported algo"),
    ("hash short", _with(["publishedFiles", 0, "hash"], "ab"), "64 hex digits"),
    ("hash not hex", _with(["publishedFiles", 0, "hash"], "zz" * 32), "64 hex digits"),
    ("hash of other algo", _with(["publishedFiles", 1, "hash"], SHA256), "128 hex digits"),
    ("file name empty", _with(["publishedFiles", 0, "fileName"], ""), "invalid file name"),
    ("file name newline", _with(["publishedFiles", 0, "fileName"], "a\nb"), "invalid file name"),
    ("source empty", _with(["publishedFiles", 0, "source"], ""), "source must not be empty"),
    ("source missing", _with(["publishedFiles", 0, "source"], None, True), "'source'"),
    (
        "duplicate file",
        _with(["publishedFiles", 1, "fileName"], "tool.tar.gz"),
        "listed twice",
    ),
]


@pytest.mark.parametrize("name,d,message", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_indexes_are_rejected(name, d, message):
    with pytest.raises(FormatError) as exc_info:
        ReleaseIndex.from_bytes(json.dumps(d).encode())
    assert message in str(exc_info.value)
    assert str(exc_info.value).startswith("Invalid release index:")
