"""Attention from a query patch: where one patch's token attends, at every layer and head (the DINO / BertViz idiom).

A ViT block's softmax attention ``A [H, T, T]`` has one row per query token; row ``q`` says how the token ``q``
weighs every key token (the row sums to 1 over all ``T`` tokens, prefix included). For the patch at grid cell
``(r, c)`` the query token is ``q = num_prefix + r * gw + c`` (raster order, row 0 at the top: `vitattn.tokens`);
its row over the patches, laid out on the grid, is a map ``[gh, gw]``, and what is left (``1 -`` the patches' sum)
is the share on the prefix tokens (CLS and registers; 0 for SigLIP, which has none).

The weights are the ones the model itself computes, captured by the ViT adapter (`vitattn.models.vit`: the output
of each block's ``attn.attn_drop``, with timm's fused attention switched off), so rotary attention (DINOv3) and
registers (DINOv2) need nothing special here. A CNN has no attention: asking for it is a ValueError.

    from vitattn.query import attention_rows, query_cell
    rows = attention_rows(model, image)                    # one forward pass: every layer, head and query
    q = rows.query(query_cell((0.3, 0.6), rows.grid))      # the patch under a normalized point
    q.maps[layer, head]     # [gh, gw]   q.fused(layer)   # mean over heads    q.prefix[layer, head]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from vitattn.similarity import check_grid, region_cells


@dataclass(frozen=True)
class QueryAttention:
    """Where one query patch attends, at every layer and head of a ViT.

    ``maps[l, h, i, j]`` is the attention of the query patch's token to the patch token at cell ``(i, j)`` in
    layer ``l``, head ``h``; ``prefix[l, h]`` the share on the prefix tokens, so that
    ``maps[l, h].sum() + prefix[l, h] == 1``.
    """

    cell: tuple[int, int]  # (row, col) of the query patch, row 0 at the top
    grid: tuple[int, int]  # (gh, gw)
    maps: np.ndarray  # [L, H, gh, gw] float32
    prefix: np.ndarray  # [L, H] float32
    num_prefix: int  # CLS + register tokens (0: SigLIP)
    has_cls: bool

    @property
    def num_layers(self) -> int:
        return int(self.maps.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.maps.shape[1])

    @property
    def index(self) -> int:
        """The query's patch index ``r * gw + c`` (its token is ``num_prefix + index``)."""
        return self.cell[0] * self.grid[1] + self.cell[1]

    def map(self, layer: int, head: int | None = None) -> np.ndarray:
        """``[gh, gw]`` attention at ``layer`` of ``head``, or with ``head=None`` the mean over heads (fused)."""
        layer, head = self._check(layer, head)
        return self.maps[layer].mean(0) if head is None else self.maps[layer, head]

    def prefix_share(self, layer: int, head: int | None = None) -> float:
        """Share of the query's attention on the prefix tokens at ``layer`` (``head=None``: mean over heads)."""
        layer, head = self._check(layer, head)
        return float(self.prefix[layer].mean() if head is None else self.prefix[layer, head])

    def _check(self, layer: int, head: int | None) -> tuple[int, int | None]:
        if isinstance(layer, bool) or not isinstance(layer, int | np.integer) or not 0 <= layer < self.num_layers:
            raise ValueError(f"layer {layer!r} out of range: valid layers 0..{self.num_layers - 1}")
        if head is not None and (
            isinstance(head, bool) or not isinstance(head, int | np.integer) or not 0 <= head < self.num_heads
        ):
            raise ValueError(f"head {head!r} out of range: valid heads 0..{self.num_heads - 1}, or None (fused)")
        return int(layer), None if head is None else int(head)


@dataclass(frozen=True, eq=False)
class AttentionRows:
    """Every attention weight of one image under one ViT: ``weights [L, H, T, T]``, rows = queries."""

    model: str
    grid: tuple[int, int]
    num_prefix: int
    has_cls: bool
    weights: np.ndarray  # [L, H, T, T] float32 softmax attention, T = num_prefix + gh * gw

    def __post_init__(self) -> None:
        gh, gw = check_grid(self.grid)
        w = self.weights
        if w.ndim != 4 or w.shape[2] != w.shape[3] or w.shape[3] != self.num_prefix + gh * gw:
            raise ValueError(
                f"weights must be [L, H, T, T] with T = {self.num_prefix} + {gh}x{gw}, got {tuple(w.shape)}"
            )

    @property
    def nbytes(self) -> int:
        return int(self.weights.nbytes)

    def query(self, cell: Sequence[int]) -> QueryAttention:
        """The attention of the patch at ``cell = (row, col)``, at every layer and head."""
        gh, gw = self.grid
        if len(cell) != 2 or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in cell):
            raise ValueError(f"cell must be two integers (row, col), got {cell!r}")
        r, c = int(cell[0]), int(cell[1])
        if not (0 <= r < gh and 0 <= c < gw):
            raise ValueError(f"cell {(r, c)} is outside the {gh}x{gw} grid: rows 0..{gh - 1}, columns 0..{gw - 1}")
        token = self.num_prefix + r * gw + c  # vitattn.tokens: prefix first, then patches in raster order
        rows = self.weights[:, :, token, :]  # [L, H, T]
        maps = np.ascontiguousarray(rows[..., self.num_prefix :].reshape(*rows.shape[:2], gh, gw), dtype=np.float32)
        prefix = rows[..., : self.num_prefix].sum(-1, dtype=np.float64).astype(np.float32)  # [L, H]
        maps.flags.writeable = False
        prefix.flags.writeable = False
        return QueryAttention((r, c), (gh, gw), maps, prefix, self.num_prefix, self.has_cls)


def query_cell(point: Sequence[float], grid: Sequence[int]) -> tuple[int, int]:
    """The cell ``(row, col)`` of a ``(gh, gw)`` grid holding a normalized point ``(x, y)``.

    The same rule as a point region of feature similarity (`vitattn.similarity.region_cells`): the cell whose
    ``[c / gw, (c + 1) / gw) x [r / gh, (r + 1) / gh)`` contains the point (the right or lower one on a shared edge,
    the last one at 1.0), so the query patch and the similarity's selected patch are the same cell.
    """
    if len(point) != 2:
        raise ValueError(f"point must be (x, y) normalized to [0, 1], got {point!r}")
    x, y = point
    cells = region_cells((x, y, x, y), tuple(grid))  # [gh, gw] bool, exactly one True
    r, c = np.argwhere(cells)[0]
    return int(r), int(c)


def attention_rows(model, image: Image.Image) -> AttentionRows:
    """One forward pass of ``image`` through a loaded `vitattn.Model` (a ViT), keeping every attention weight.

    Raises:
        ValueError: the model has no attention (a CNN such as ResNet-50).
    """
    import torch

    from vitattn.models.vit import VitAdapter

    spec = model.spec
    if not isinstance(model.adapter, VitAdapter):
        raise ValueError(
            f"{spec.name} ({spec.family}) has no attention weights: query attention needs a ViT "
            "(feature similarity still works)"
        )
    x = model.transform(image).unsqueeze(0).to(model.device)  # (1, 3, S, S)
    with torch.no_grad():
        trace = model.adapter.trace(x)  # attention as the blocks compute it (no gradients)
    weights = np.stack([a[0].float().cpu().numpy() for a in trace.attentions])  # [L, H, T, T]
    weights.flags.writeable = False
    return AttentionRows(spec.name, tuple(trace.grids[-1]), trace.num_prefix, trace.has_cls, weights)


def query_attention(model, image: Image.Image, point: Sequence[float]) -> QueryAttention:
    """Where the patch under the normalized point ``(x, y)`` attends, at every layer and head of ``model``."""
    rows = attention_rows(model, image)
    return rows.query(query_cell(point, rows.grid))
