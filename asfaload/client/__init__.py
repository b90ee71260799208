"""The client side: a typed HTTP client for the backend and the verified download.

- :class:`~asfaload.client.api.BackendClient` — every ``/v1`` endpoint, errors mapped to
  :mod:`asfaload.errors` types with the server's message.
- :mod:`~asfaload.client.source` — where a release's facts are read: the backend, or a git
  mirror (:class:`~asfaload.client.source.GitMirrorSource`, history replayed before use).
- :func:`~asfaload.client.download.download` — verified download (revocation first, thresholds,
  optional ``--full-check`` chain, streaming hash, atomic move);
  :func:`~asfaload.client.download.verify_local_file` — the same checks for a file on disk.
- :mod:`~asfaload.client.signing` — what ``sign-pending`` and ``revoke`` sign.
"""
