"""Placeholder replaced by the end-to-end demo."""

print("demo: not yet")
