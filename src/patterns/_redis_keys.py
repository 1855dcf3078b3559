"""How ftsync names its Redis keys: every key of one lock or one limiter in one Cluster slot.

A Redis Cluster hashes a key by the first non-empty ``{tag}`` in it, or by the whole key.  The
keys of one lock or limiter are used together in one script, so they must share a slot:
``slot_prefix(name)`` is ``{name}`` (hashing as ``name`` itself does), or ``name`` unchanged
when it carries a hash tag of its own, so that a user can place related locks and limiters
together (``"user{42}"``).  RedisLock, Redlock and the Redis rate limiters all use it.
"""

from __future__ import annotations

__all__ = ["has_hash_tag", "slot_prefix"]


def has_hash_tag(name: str) -> bool:
    """Whether Redis Cluster hashes ``name`` by a ``{tag}`` inside it rather than the whole name."""
    start = name.find("{")
    return start >= 0 and name.find("}", start + 1) > start + 1


def slot_prefix(name: str) -> str:
    """The prefix that keeps a thing's keys in one slot: ``{name}``, or ``name`` if it has a tag.

    A name with braces but no tag ("a}b", "x{}") could not be matched by any tag: ValueError.
    """
    if has_hash_tag(name):
        return name
    if "{" in name or "}" in name:
        raise ValueError(
            f"name must not contain '{{' or '}}' unless as a Redis Cluster hash tag like 'a{{tag}}b', got {name!r}"
        )
    return "{" + name + "}"
