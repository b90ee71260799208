"""Schemathesis against ``/openapi.json`` of a live ``asfaload serve`` process.

Every operation the document describes is fuzzed (bounded, derandomized so CI runs are
reproducible) and every response must conform: no 5xx, a documented status code, the documented
content type and the documented response schema.

Random strings almost never name a real mirror file and random headers never authenticate, so
on their own the generated requests would only ever reach the 400/401/404 branches. The server
is therefore seeded with a real project (active signers file, a pending release) and each case
is sent in one of three ways: unsigned (whatever headers schemathesis generated: 401 expected),
signed for real by a signer of the project, or signed by an outsider. Path parameters are drawn
both from schemathesis and from the seeded mirror's real paths, so the 200/403/409 branches and
their response schemas are exercised as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err

from asfaload import layout
from asfaload.auth import sign_request
from asfaload.crypto import SecretKey, sha512
from asfaload.devtools.server import ServerProcess
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.rules.ops import RegisterRelease
from asfaload.store import Mirror
from tests.reliability.support import setting
from tests.support.rules import register_and_activate, signers_bytes

# Bounded so that the file stays near a minute on two shared cores: generation, not the
# server, is the cost (about 70 ms a case here against 1-8 ms of server time). `make soak` sets
# ASFALOAD_SOAK_EXAMPLES (1,000 or more) for every operation and mode.
MAX_EXAMPLES = {"positive": setting("EXAMPLES", 50), "negative": setting("EXAMPLES", 20)}
# Operations whose only input is an unconstrained path string: there is no invalid value of
# it to generate (every string is a valid path parameter), so no negative run.
NO_NEGATIVE = {
    "/v1/ping",
    "/v1/files/{file_path}",
    "/v1/get_signers/{file_path}",
    "/v1/get_signers_chain/{file_path}",
}

P = "https/github.com/443/acme/tool"
INDEX = layout.github_release_index_path(P, "v1.0")
# Kept out of the fuzzed paths: the explicit signing sequence needs it untouched.
INDEX2 = layout.github_release_index_path(P, "v2.0")
PENDING_PATH = "/v1/pending_signatures"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

EXPECTED_OPERATIONS = {
    ("GET", "/v1/ping"),
    ("POST", "/v1/register_repo"),
    ("POST", "/v1/update_signers"),
    ("POST", "/v1/signatures"),
    ("GET", "/v1/signatures/{file_path}"),
    ("GET", "/v1/pending_signatures"),
    ("GET", "/v1/files/{file_path}"),
    ("GET", "/v1/files-to-sign/{file_path}"),
    ("GET", "/v1/get_signers/{file_path}"),
    ("GET", "/v1/get_signers_chain/{file_path}"),
    ("POST", "/v1/revoke"),
    ("POST", "/v1/assets"),
}


class SignAs(requests.auth.AuthBase):
    """Sign the request exactly as it goes on the wire (method, raw target, body bytes)."""

    def __init__(self, key: SecretKey) -> None:
        self.key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        # Schemathesis fills the X-asfld-* headers with generated values; ours replace them.
        for name in list(r.headers):
            if name.lower().startswith("x-asfld-"):
                del r.headers[name]
        r.headers.update(sign_request(self.key, r.method or "GET", r.path_url, body))
        return r


class World:
    def __init__(self, server: ServerProcess, signer: SecretKey, outsider: SecretKey) -> None:
        self.server = server
        self.signer = signer
        self.outsider = outsider
        self.paths: list[str] = []
        self.files: dict[str, bytes] = {}


def _seed(mirror: Mirror, keys: list[SecretKey]) -> dict[str, bytes]:
    """An active project (all three keys signed its signers file) with one pending release."""
    signers = signers_bytes(artifact=[(keys, 2)], admin=[([keys[0]], 1)])
    register_and_activate(mirror, P, signers, keys)
    index = ReleaseIndex.create(
        [PublishedFile("tool.tar.gz", "Sha256", "https://example.org/t", "ab" * 32)],
        mirrored_on=1_700_000_000,
        published_on=1_700_000_000,
    )
    for path in (INDEX, INDEX2):
        mirror.submit(RegisterRelease(path, index.to_bytes(), keys[0].public_key))
    view = mirror.view()
    real = {p: view.read(p) or b"" for p in sorted(_walk(view, ""))}
    assert INDEX in real and layout.signers_file_path(P) in real
    return real


def _walk(view: Any, prefix: str) -> Iterator[str]:
    for name in view.listdir(prefix):
        path = f"{prefix}/{name}" if prefix else name
        if view.is_dir(path):
            yield path
            yield from _walk(view, path)
        else:
            yield path


@pytest.fixture(scope="module")
def seeded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    data_dir.mkdir()
    keys = [SecretKey.generate("ed25519") for _ in range(3)]
    mirror = Mirror.init(str(data_dir / "mirror.git"))
    try:
        real = _seed(mirror, keys)
    finally:
        mirror.close()
    # Private addresses refused (the default): generated URLs must never make the server
    # fetch anything from this machine.
    server = ServerProcess(data_dir, log_path=Path(str(data_dir) + "-server.log")).start()
    w = World(server, keys[1], SecretKey.generate("ed25519"))
    w.files = real
    fuzzed = [p for p in real if not p.startswith(layout.parent(INDEX2))]
    w.paths = [*fuzzed, "nope", f"{P}/missing.json", f"{INDEX}.signatures.json.pending"]
    try:
        yield w
    finally:
        server.stop()


def _signature_bodies(seeded_server: World) -> st.SearchStrategy[dict[str, Any]]:
    """``POST /v1/signatures`` bodies a real client could send: real paths, the signer's key,
    signatures that verify (or not), so the 200/403/409 answers are reached too."""
    view_files = seeded_server.files

    def body(subject: str, extra: list[str], valid: bool) -> dict[str, Any]:
        sigs = {}
        for p in [subject, *extra]:
            data = view_files.get(p, b"")
            sigs[p] = seeded_server.signer.sign(sha512(data if valid else data + b"x")).to_wire()
        return {
            "file_path": subject,
            "public_key": str(seeded_server.signer.public_key),
            "signatures": sigs,
        }

    paths = st.sampled_from(seeded_server.paths)
    return st.builds(body, paths, st.lists(paths, max_size=2), st.booleans())


def _strategy(operation: Any, mode: GenerationMode, seeded_server: World) -> st.SearchStrategy[Any]:
    generated: st.SearchStrategy[Any] = operation.as_strategy(generation_mode=mode)
    if "{file_path}" in operation.path and mode is GenerationMode.POSITIVE:
        real = st.sampled_from(seeded_server.paths).flatmap(
            lambda p: operation.as_strategy(generation_mode=mode, path_parameters={"file_path": p})
        )
        return st.one_of(generated, real)
    if operation.path == "/v1/signatures" and mode is GenerationMode.POSITIVE:
        real = _signature_bodies(seeded_server).flatmap(
            lambda b: operation.as_strategy(generation_mode=mode, body=b)
        )
        return st.one_of(generated, real)
    return generated


def _run_operation(seeded_server: World, operation: Any, mode: GenerationMode) -> None:
    who = {
        "anonymous": None,
        "signer": SignAs(seeded_server.signer),
        "outsider": SignAs(seeded_server.outsider),
    }

    @given(case=_strategy(operation, mode, seeded_server), as_who=st.sampled_from(sorted(who)))
    @settings(
        max_examples=MAX_EXAMPLES[mode.value],
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    def check(case: Any, as_who: str) -> None:
        seen[0] += 1
        case.call_and_validate(
            base_url=seeded_server.server.base_url, auth=who[as_who], checks=CHECKS, timeout=30
        )

    seen = [0]
    check()
    assert seen[0] > 0, f"no case was sent for {operation.method} {operation.path}"


def _all_operations(seeded_server: World) -> list[Any]:
    api = schemathesis.openapi.from_url(seeded_server.server.url("/openapi.json"))
    ops: list[Any] = []
    for result in api.get_all_operations():
        if isinstance(result, Err):  # the document itself is broken
            raise AssertionError(f"invalid operation in /openapi.json: {result.err()}")
        ops.append(result.ok())
    return ops


def _operations(seeded_server: World) -> list[Any]:
    ops = _all_operations(seeded_server)
    assert {(op.method.upper(), op.path) for op in ops} == EXPECTED_OPERATIONS
    return ops


def test_every_operation_conforms_with_valid_inputs(seeded_server: World) -> None:
    for operation in _operations(seeded_server):
        _run_operation(seeded_server, operation, GenerationMode.POSITIVE)


def test_every_operation_conforms_with_invalid_inputs(seeded_server: World) -> None:
    # Bodies, paths and headers that violate the schema must be answered with a documented
    # client error, never a 5xx or an undocumented shape.
    for operation in _operations(seeded_server):
        if operation.path not in NO_NEGATIVE:
            _run_operation(seeded_server, operation, GenerationMode.NEGATIVE)


def test_every_real_path_and_caller_conforms(seeded_server: World) -> None:
    """Exhaustively (not sampled): every seeded mirror path on every path operation, for each
    caller, and the signing sequence of the pending release (200, then 409, 403 for an
    outsider's valid signatures), so every success branch's schema is checked."""
    who = {
        "anonymous": None,
        "signer": SignAs(seeded_server.signer),
        "outsider": SignAs(seeded_server.outsider),
    }
    statuses: dict[str, set[int]] = {}
    for operation in _all_operations(seeded_server):
        if "{file_path}" not in operation.path:
            continue
        for path in seeded_server.paths:
            for auth in who.values():
                case = operation.Case(path_parameters={"file_path": path})
                response = case.call_and_validate(
                    base_url=seeded_server.server.base_url, auth=auth, checks=CHECKS, timeout=30
                )
                statuses.setdefault(operation.path, set()).add(response.status_code)
    assert statuses["/v1/files-to-sign/{file_path}"] >= {200, 401, 403, 404}
    # Public: the same answers signed or not, to signers and outsiders alike.
    assert statuses["/v1/signatures/{file_path}"] >= {200, 404}
    assert not statuses["/v1/signatures/{file_path}"] & {401, 403}
    assert statuses["/v1/get_signers_chain/{file_path}"] >= {200, 400}

    submit = next(op for op in _all_operations(seeded_server) if op.path == "/v1/signatures")
    index = seeded_server.files[INDEX2]

    def body(key: SecretKey) -> dict[str, Any]:
        wire = key.sign(sha512(index)).to_wire()
        return {
            "file_path": INDEX2,
            "public_key": str(key.public_key),
            "signatures": {INDEX2: wire},
        }

    for key, expected in (
        (seeded_server.outsider, 403),
        (seeded_server.signer, 200),
        (seeded_server.signer, 409),
    ):
        case = submit.Case(body=body(key), media_type="application/json")
        response = case.call_and_validate(
            base_url=seeded_server.server.base_url, auth=SignAs(key), checks=CHECKS, timeout=30
        )
        assert response.status_code == expected, response.text


def _derived(response: schemathesis.Response, **changes: Any) -> schemathesis.Response:
    fields: dict[str, Any] = {
        "status_code": response.status_code,
        "headers": response.headers,
        "content": response.content,
        "request": response.request,
        "elapsed": response.elapsed,
        "verify": response.verify,
    }
    fields.update(changes)
    return schemathesis.Response(**fields)


def test_the_checks_catch_nonconforming_responses(seeded_server: World) -> None:
    """The runs above can fail: an answer outside the document is reported by these checks."""
    pending = next(op for op in _all_operations(seeded_server) if op.path == PENDING_PATH)
    case = pending.Case()
    response = case.call(
        base_url=seeded_server.server.base_url, auth=SignAs(seeded_server.signer), timeout=30
    )
    assert response.status_code == 200
    case.validate_response(response, checks=CHECKS)  # the real answer conforms

    bad = {
        "Undocumented status code": _derived(response, status_code=418),
        "Server error": _derived(response, status_code=500),
        "Response violates schema": _derived(response, content=b'{"file_paths": "x"}'),
        "Undocumented Content-Type": _derived(
            response, headers={**response.headers, "content-type": ["text/html"]}
        ),
    }
    for title, wrong in bad.items():
        with pytest.raises(FailureGroup) as caught:
            case.validate_response(wrong, checks=CHECKS)
        assert title.lower() in str(caught.value).lower(), (title, str(caught.value))
