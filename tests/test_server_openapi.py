"""/openapi.json against the live server: it describes exactly the app's routes, and schemathesis
(bounded) finds no 5xx and no response outside the documented statuses and schemas.

Requests are signed for real by a requests auth hook, so the authenticated endpoints are
exercised past the 401 as well.
"""

from __future__ import annotations

import re

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from asfaload.auth import sign_request
from asfaload.crypto import SecretKey
from asfaload.devtools.server import ServerProcess

KEY = SecretKey.generate("ed25519")


class SignRequests(requests.auth.AuthBase):
    """Sign every request exactly as it goes on the wire (method, target, body bytes)."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        # Schemathesis may put its own values in the X-asfld-* headers; ours replace them.
        for name in list(r.headers):
            if name.lower().startswith("x-asfld-"):
                del r.headers[name]
        r.headers.update(sign_request(KEY, r.method or "GET", r.path_url, body))
        return r


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_api_conforms_to_openapi(live_server: ServerProcess):
    api = schemathesis.openapi.from_url(live_server.url("/openapi.json"))
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case):
            case.call_and_validate(
                base_url=live_server.base_url, auth=SignRequests(), checks=CHECKS, timeout=60
            )

        run()


def test_openapi_describes_exactly_the_routes(live_server: ServerProcess):
    doc = requests.get(live_server.url("/openapi.json"), timeout=10).json()
    described = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in doc["paths"].items()
        for method in item
    }
    from asfaload.server import ServerConfig, create_app

    app = create_app(ServerConfig(data_dir=live_server.data_dir.parent / "routes-probe"))
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        path = re.sub(r"<[^>]+>", "{}", rule.rule)
        for method in rule.methods or ():
            if method not in ("HEAD", "OPTIONS"):
                served.add((method, path))
    assert described == served
