"""A bounded, thread-safe least-recently-used cache, shared by the store (row groups by bytes, open files by count)
and the app (views and live analyses by count)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Keeps the most recently used values while their total ``size`` stays within ``capacity``.

    Args:
        capacity: the bound, in the unit of the sizes given to ``put`` (bytes, or the default 1 per entry).

    ``get_or_make`` runs ``make`` outside the cache lock, so one slow computation does not block reads of other
    keys, while concurrent requests for the same key wait for the first one instead of computing it again.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        self._pending: dict[K, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: K) -> bool:
        return key in self._items

    @property
    def size(self) -> int:
        return self._total

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V, size: int = 1) -> V:
        """Stores ``value`` (one larger than the whole capacity is not kept) and returns it."""
        with self._lock:
            self._pop(key)
            if size <= self.capacity:
                self._items[key] = (value, size)
                self._total += size
            while self._total > self.capacity:
                _, (_, old_size) = self._items.popitem(last=False)
                self._total -= old_size
        return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The cached value of ``key``, or ``make()`` stored under it (an exception is raised and not stored)."""
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                return item[0]
            pending = self._pending.setdefault(key, threading.Lock())
        with pending:
            value = self.get(key)
            if value is not None:
                return value
            try:
                return self.put(key, make())
            finally:
                with self._lock:
                    self._pending.pop(key, None)

    def pop(self, key: K) -> V | None:
        with self._lock:
            return self._pop(key)

    def drain(self) -> list[V]:
        """Empties the cache; returns what it held."""
        with self._lock:
            values = [v for v, _ in self._items.values()]
            self._items.clear()
            self._total = 0
        return values

    def _pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self._total -= item[1]
        return item[0]
