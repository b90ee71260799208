"""Replication: judging commits of the mirror, replaying its history, following a primary.

:mod:`.commits` holds the one commit check the pre-receive hook, ``mirror verify`` and
``mirror sync`` share.
"""
