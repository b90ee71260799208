"""Request authentication (asfaload.auth) and the SQLite nonce store, without HTTP.

The same attacks are replayed against the real server process in test_server_auth.py.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.auth import (
    HEADER_NONCE,
    HEADER_PK,
    HEADER_SIG,
    HEADER_TIMESTAMP,
    MAX_AGE_SECONDS,
    MAX_AHEAD_SECONDS,
    canonical_bytes,
    check_nonce,
    parse_timestamp,
    sign_request,
    verify_request,
)
from asfaload.crypto import SecretKey
from asfaload.errors import AsfaloadError, AuthenticationError
from asfaload.store.nonces import SqliteNonceStore

NOW = 1_712_860_800
BODY = b'{"signers_file_url":"https://github.com/acme/repo/blob/main/s.json","public_key":"k"}'


class MemoryNonces:
    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def remember(self, nonce: str, expires_at: int, now: int) -> bool:
        if nonce in self.seen and self.seen[nonce] >= now:
            return False
        self.seen[nonce] = expires_at
        return True


@pytest.fixture(scope="module", params=["minisign", "ed25519"])
def key(request) -> SecretKey:
    return SecretKey.generate(request.param)


def _verify(headers, method="POST", target="/v1/register_repo", body=BODY, nonces=None, now=NOW):
    return verify_request(headers, method, target, body, nonces or MemoryNonces(), now=now)


def test_canonical_string_layout():
    assert canonical_bytes("12", "n", "post", "/v1/x?a=1", b"{}") == b"12##n##POST##/v1/x?a=1##{}"


def test_valid_request_verifies_and_returns_key(key):
    headers = sign_request(key, "POST", "/v1/register_repo", BODY, now=NOW)
    assert headers[HEADER_TIMESTAMP] == str(NOW)
    check_nonce(headers[HEADER_NONCE])
    auth = _verify(headers)
    assert auth.public_key == key.public_key
    assert auth.timestamp == NOW


def test_window_edges(key):
    for delta in (-MAX_AGE_SECONDS, MAX_AHEAD_SECONDS, 0):
        _verify(sign_request(key, "GET", "/v1/ping", b"", now=NOW + delta), "GET", "/v1/ping", b"")
    for delta in (-MAX_AGE_SECONDS - 1, MAX_AHEAD_SECONDS + 1, -360, 60):
        headers = sign_request(key, "GET", "/v1/ping", b"", now=NOW + delta)
        with pytest.raises(AuthenticationError, match="Timestamp validation failed"):
            _verify(headers, "GET", "/v1/ping", b"")


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("POST", "/v1/update_signers", BODY),  # same body, other endpoint
        ("PUT", "/v1/register_repo", BODY),  # other method
        ("POST", "/v1/register_repo?x=1", BODY),  # query added
        ("POST", "/v1/register_repo", BODY + b" "),  # body tampered
    ],
)
def test_method_target_and_body_are_bound(key, method, target, body):
    headers = sign_request(key, "POST", "/v1/register_repo", BODY, now=NOW)
    with pytest.raises(AuthenticationError, match="Signature verification failed"):
        _verify(headers, method, target, body)


def test_replay_refused_and_bad_signature_does_not_burn_nonce(key):
    nonces = MemoryNonces()
    headers = sign_request(key, "POST", "/v1/register_repo", BODY, now=NOW)
    forged = dict(
        headers, **{HEADER_SIG: sign_request(key, "POST", "/x", b"", now=NOW)[HEADER_SIG]}
    )
    with pytest.raises(AuthenticationError):
        _verify(forged, nonces=nonces)
    assert nonces.seen == {}
    _verify(headers, nonces=nonces)
    with pytest.raises(AuthenticationError, match="Replay"):
        _verify(headers, nonces=nonces)


def test_signature_by_another_key_refused(key):
    other = SecretKey.generate(key.public_key.algorithm)
    headers = sign_request(other, "POST", "/v1/register_repo", BODY, now=NOW)
    headers[HEADER_PK] = str(key.public_key)
    with pytest.raises(AuthenticationError, match="Signature verification failed"):
        _verify(headers)


@pytest.mark.parametrize("missing", [HEADER_TIMESTAMP, HEADER_NONCE, HEADER_PK, HEADER_SIG])
def test_missing_header(key, missing):
    headers = sign_request(key, "POST", "/v1/register_repo", BODY, now=NOW)
    del headers[missing]
    with pytest.raises(AuthenticationError, match="Missing authentication headers"):
        _verify(headers)


@pytest.mark.parametrize(
    "spell",
    [
        str.upper,
        lambda n: "{" + n + "}",
        lambda n: "urn:uuid:" + n,
        lambda n: n.replace("-", ""),
        lambda n: " " + n,
    ],
)
def test_non_canonical_nonce_refused_even_when_signed(key, spell):
    nonce = spell(str(uuid.uuid4()))
    headers = sign_request(key, "POST", "/v1/register_repo", BODY, now=NOW, nonce=nonce)
    with pytest.raises(AuthenticationError):
        _verify(headers)


def test_non_v4_uuid_refused(key):
    nonce = str(uuid.uuid1())
    headers = sign_request(key, "POST", "/v1/register_repo", BODY, now=NOW, nonce=nonce)
    with pytest.raises(AuthenticationError, match="nonce"):
        _verify(headers)


@pytest.mark.parametrize("ts", ["", "+1712860800", "01712860800", "1712860800.0", "-5", "1e9"])
def test_non_canonical_timestamp_refused(ts):
    with pytest.raises(AuthenticationError, match="timestamp"):
        parse_timestamp(ts)


def test_garbage_key_and_signature(key):
    headers = sign_request(key, "POST", "/v1/register_repo", BODY, now=NOW)
    with pytest.raises(AuthenticationError, match="Key error"):
        _verify(dict(headers, **{HEADER_PK: "ed25519:notakey"}))
    with pytest.raises(AuthenticationError, match="Signature error"):
        _verify(dict(headers, **{HEADER_SIG: "AAAA"}))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([HEADER_TIMESTAMP, HEADER_NONCE, HEADER_PK, HEADER_SIG, "Other"]),
        st.text(max_size=120),
    ),
    st.binary(max_size=64),
)
def test_arbitrary_headers_only_raise_authentication_errors(headers, body):
    try:
        verify_request(headers, "POST", "/v1/x", body, MemoryNonces(), now=NOW)
    except AuthenticationError:
        pass
    except AsfaloadError as exc:  # pragma: no cover - the assertion reports it
        raise AssertionError(f"leaked {type(exc).__name__}: {exc}") from exc


# --- the SQLite nonce store --------------------------------------------------------------------
def test_sqlite_nonce_store_survives_reopen_and_expires(tmp_path):
    path = tmp_path / "private" / "nonces.sqlite3"
    store = SqliteNonceStore(path)
    n = str(uuid.uuid4())
    assert store.remember(n, NOW + 301, NOW)
    assert not store.remember(n, NOW + 301, NOW)
    reopened = SqliteNonceStore(path)
    assert not reopened.remember(n, NOW + 301, NOW + 100)
    # Once expired (its timestamp is out of the window anyway) the row may be replaced.
    assert reopened.remember(n, NOW + 1000, NOW + 302)
    assert reopened.count() == 1


def test_sqlite_nonce_store_purges_expired_rows(tmp_path):
    store = SqliteNonceStore(tmp_path / "n.sqlite3")
    for _ in range(256):
        store.remember(str(uuid.uuid4()), NOW, NOW - 10)
    # The periodic purge runs on the first insert of each block of 256 (here the 257th).
    store.remember(str(uuid.uuid4()), NOW + 500, NOW + 100)
    assert store.count() == 1


def test_verify_with_sqlite_store(key, tmp_path):
    store = SqliteNonceStore(tmp_path / "n.sqlite3")
    headers = sign_request(key, "GET", "/v1/pending_signatures", b"", now=NOW)
    verify_request(headers, "GET", "/v1/pending_signatures", b"", store, now=NOW)
    with pytest.raises(AuthenticationError, match="Replay"):
        verify_request(
            headers, "GET", "/v1/pending_signatures", b"", SqliteNonceStore(store._path), now=NOW
        )
