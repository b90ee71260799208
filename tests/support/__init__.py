"""Helpers shared by the test modules (none of them is a test module; no test module imports
another). One module per subject:

- ``rules``: keys, signers files, releases and operations for the rules engine, in memory;
- ``tuf``: TUF roots, keys and signed documents for the TUF rules and the TUF API;
- ``tuf_server``: an admin talking to a real server's TUF API over HTTP;
- ``server``: a real server holding one active project, and signature submissions to it;
- ``mirror``: real histories written through the store, and commits forged around it;
- ``http``: raw and signed HTTP requests (``http.client``, no redirects followed);
- ``git``: git objects planted with pygit2;
- ``ssh``: OpenSSH keys made with ``ssh-keygen``;
- ``models``: one valid document of each signed-file model, with its parsers;
- ``cli``: the CLI's command tree.

What tests, the demos (``examples/``) and the benchmarks (``bench/``) all use (a real server
process, the end-to-end harness, the web demo) is in ``asfaload.devtools``.
"""
