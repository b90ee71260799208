"""Replication: judging commits of the mirror, replaying its history, following a primary.

- :mod:`.commits`: the one commit check the pre-receive hook, ``mirror verify`` and
  ``mirror sync`` share (the commit's tree id must be the tree the rules derive);
- :mod:`.replay`: ``mirror verify``, all of a history through that check;
- :mod:`.sync`: ``mirror sync``, a primary's new commits checked before a read-only mirror's
  ``main`` follows them;
- :mod:`.status`: what ``mirror status`` reports (tip, upstream, last verified, last error).
"""
