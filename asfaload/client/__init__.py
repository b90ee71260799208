"""The client side: a typed HTTP client for the backend and the verified download.

- :class:`~asfaload.client.api.BackendClient` — every ``/v1`` endpoint, errors mapped to
  :mod:`asfaload.errors` types with the server's message.
- :func:`~asfaload.client.download.download` — verified download (revocation first, thresholds,
  optional ``--full-check`` chain, streaming hash, atomic move).
- :mod:`~asfaload.client.signing` — what ``sign-pending`` and ``revoke`` sign.
"""
