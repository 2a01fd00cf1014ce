"""Visitor shards: where the global keys a visitor's events touch live (issue 19).

Every key of one visitor already shares the hash tag `{<visitor id>}`. The global keys (the event
stream, recent visitors, segment counts, experiment and insight counters) are shared by every
visitor: on Redis Cluster each is one slot, so one node would take every write. With
EVENT_STREAM_SHARDS = N > 1 they are split into N shards: visitor v belongs to shard
crc32(v) % N (stable across processes and restarts), and shard i's keys share the hash tag
`shard_tag(i, N)`, so each shard lives in one slot and a batch's global writes go to one node.

The tags are chosen, not `{0}`, `{1}`, `{2}`: the slots of those three land on only two of three
masters (CRC16 puts 9842 and 5649 in the same third). Shard i's tag is the first of "i",
"i-1", "i-2", ... whose slot lies in the i-th N-th of the 16384 slots, so the shards land on N
different masters whenever the masters own equal contiguous slot ranges, which is how
`redis-cli --cluster create` assigns them.

With N = 1 (the default) every key keeps its original name: nothing changes on a single Redis.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot


def shard_of(visitor_id: str, shards: int) -> int:
    """The visitor's shard in 0..shards-1 (0 when there is one)."""
    if shards <= 1:
        return 0
    return zlib.crc32(visitor_id.encode()) % shards


@lru_cache(maxsize=64)
def shard_tags(shards: int) -> tuple[str, ...]:
    """The hash tag of each shard (see the module docstring)."""
    tags = []
    for shard in range(shards):
        low = shard * REDIS_CLUSTER_HASH_SLOTS // shards
        high = (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // shards
        label, attempt = str(shard), 0
        while not low <= key_slot(label.encode()) < high:
            attempt += 1
            label = f"{shard}-{attempt}"
        tags.append(label)
    return tuple(tags)


def shard_tag(shard: int, shards: int) -> str:
    return shard_tags(shards)[shard]


def visitor_tag(visitor_id: str, shards: int) -> str:
    """The hash tag of the visitor's shard."""
    return shard_tag(shard_of(visitor_id, shards), shards)
