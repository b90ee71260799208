"""Tools for trying asfaload on one machine, kept apart from the library's core.

Nothing in ``asfaload`` imports this package: only the ``asfaload dev`` commands, the demo and
the tests do.
"""
