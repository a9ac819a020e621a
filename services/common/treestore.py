"""Where a job's tree search lives between steps, so any proposer replica can continue it.

The header (small, mutable) is one key of ``mephisto_search``, written with a revision check;
each node's record (immutable) is one key of ``mephisto_nodes``, written once. A proposer keeps
the trees it advanced in memory and reuses one while the header's revision is the one it wrote,
so a step costs one header read, one node write and one header write, whatever the tree's size.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from nats.js.errors import KeyNotFoundError

from mephisto_sed.agents.policy import Policy
from mephisto_sed.agents.search import SearchTree
from mephisto_sed.agents.space import SearchSpace

from . import codec
from .bus import KV_NODES, KV_SEARCH, Bus


class TreeStore:
    def __init__(self, bus: Bus, cache_size: int = 256):
        self.bus = bus
        self.cache: OrderedDict[str, tuple[int, SearchTree]] = OrderedDict()
        self.cache_size = cache_size
        self.hits = self.misses = 0

    async def load(self, job_id: str, space: SearchSpace, policy: Policy) -> tuple[SearchTree | None, int]:
        """(tree, header revision), or (None, 0) when the job has no search yet."""
        try:
            entry = await self.bus.kv[KV_SEARCH].get(job_id)
        except KeyNotFoundError:
            return None, 0
        cached = self.cache.get(job_id)
        if cached is not None and cached[0] == entry.revision:
            self.hits += 1
            self.cache.move_to_end(job_id)
            return cached[1], entry.revision
        self.misses += 1
        header = codec.unpack(entry.value)
        records = [
            codec.unpack((await self.bus.kv[KV_NODES].get(f"{job_id}.{i}")).value) for i in range(header["n_nodes"])
        ]
        tree = await asyncio.to_thread(SearchTree.from_parts, header, records, space, policy)  # CPU: off the loop
        return tree, entry.revision

    async def create(self, job_id: str, tree: SearchTree) -> int:
        """Raises KeyWrongLastSequenceError when another replica created it first."""
        rev = await self.bus.kv[KV_SEARCH].create(job_id, codec.pack(tree.header()))
        self._keep(job_id, rev, tree)
        return rev

    async def update(self, job_id: str, tree: SearchTree, revision: int, first_new_node: int) -> int:
        """Write the nodes from ``first_new_node`` on, then the header if it is still at ``revision``
        (else KeyWrongLastSequenceError, and the in-memory tree is forgotten)."""
        try:
            for i in range(first_new_node, len(tree.nodes)):
                await self.bus.kv[KV_NODES].put(f"{job_id}.{i}", codec.pack(tree.node_record(i)))
            rev = await self.bus.kv[KV_SEARCH].update(job_id, codec.pack(tree.header()), last=revision)
        except Exception:
            self.forget(job_id)
            raise
        self._keep(job_id, rev, tree)
        return rev

    def forget(self, job_id: str) -> None:
        self.cache.pop(job_id, None)

    def _keep(self, job_id: str, rev: int, tree: SearchTree) -> None:
        self.cache[job_id] = (rev, tree)
        self.cache.move_to_end(job_id)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
