"""A bounded, thread-safe LRU cache: decoded row groups by bytes, open Parquet footers by count."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class LRU:
    """Keeps the most recently used values while their total ``size`` stays within ``capacity``.

    Args:
        capacity: the bound, in the unit of the sizes given to ``put`` (bytes, or 1 per entry).
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: Any, size: int = 1) -> Any:
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

    def pop(self, key: Hashable) -> Any | None:
        with self._lock:
            return self._pop(key)

    def drain(self) -> list[Any]:
        """Empties the cache; returns what it held."""
        with self._lock:
            values = [v for v, _ in self._items.values()]
            self._items.clear()
            self._total = 0
        return values

    def _pop(self, key: Hashable) -> Any | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self._total -= item[1]
        return item[0]

    @property
    def size(self) -> int:
        return self._total

    def __len__(self) -> int:
        return len(self._items)
