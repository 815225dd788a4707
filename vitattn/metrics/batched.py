"""Every column of the metrics table for a stack of maps at once, as torch operations on the analysis device.

    from vitattn.metrics.batched import score_maps
    scores = score_maps(maps, boxes, device="cuda")  # maps: [N, gh, gw]; the same BatchScores as score_batch

The numpy path (``scores.score_batch``, with ``continuous`` and ``threshold_free``) defines every metric and stays
the reference: this module computes the same numbers (equal to 1e-5, ties by the same expected-share rule;
``tests/test_metrics_batched.py``) with the work shared across metrics and maps:

- one upsampling of the ``[N, gh, gw]`` stack: the lerp ``a + w * (b - a)`` of ``raster.upsample`` in float32;
- one sort per map of int64 keys (the value's order-preserving bits, then the map's box-union bit): every IoU
  percentile, the relevance rank and the pixel AP read the sorted keys and one running count of inside pixels
  (ties at a threshold: ``ranking.expected_top_k_hits``'s rule, from the tie's bounds found by binary search);
  on the CPU numpy sorts the keys (its vectorised sort is ~20x faster than torch's CPU sort), on CUDA torch does;
- the per-box IoU at ``box_percentile``, coverage, relevance mass and both pointing games as matrix products of
  the maps with the masks (float64 where the numpy path sums in float64);
- the box masks, the soft ground truth, the pointing tolerance mask and the EMD target once per box list (the CPU
  path's ``batched_host.host_targets``, moved to the device);
- mse and kl as reductions; emd: the 8 x 8 area resize as matrix products on the device, then the exact
  transport problems on the host with POT (``continuous.wasserstein_grids``).

On the CPU (``CPU_PATH = "numpy"``) the same numbers come from the numpy path of ``batched_host``, which makes fewer
passes over the pixels, in blocks of ``HOST_CHUNK`` maps scored on up to ``host_threads()`` threads (numpy's sorts,
ufuncs and reductions and POT's solver release the GIL; each thread reuses its own ``Buffers``). The thread count is
bounded by torch's: the cores ``analyze`` was given (so a wall-time comparison with it is fair; one in a Ray worker
that asks for one CPU). The precompute job scores a unit's maps after its forward passes, on the same thread, so the
two never compete for the cores. ``CPU_PATH = "torch"`` runs the accelerator path on the CPU (the tests check both).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from vitattn.metrics.batched_host import HostTargets, host_scores, host_targets
from vitattn.metrics.batched_ranks import Buffers
from vitattn.metrics.continuous import KL_EPSILON, wasserstein_grids
from vitattn.metrics.ranking import check_percentile
from vitattn.metrics.raster import (
    _lerp_indices,
    box_masks,
    check_boxes,
    check_heatmaps,
    check_resolution,
)
from vitattn.metrics.scores import PERCENTILES, BatchScores

CPU_PATH = "numpy"  # on the CPU: "numpy" (batched_host, the fast path) or "torch" (the accelerator path, for tests)
HOST_CHUNK = 16  # maps per block of host_scores, at most
HOST_THREADS = min(4, os.cpu_count() or 1)  # at most, threads scoring host_scores blocks (measured with 2)
CPU_CHUNK = 16  # maps per block of the torch path on the CPU: the temporaries (~60 bytes per pixel) stay in cache
DEVICE_CHUNK = 512  # maps per block on an accelerator
HOST_WORKERS = min(8, os.cpu_count() or 1)  # threads solving the exact EMDs of maps scored on an accelerator
_BUFFERS: list[Buffers] = []  # host_scores' reusable temporaries (_host_block)
_BUFFERS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Targets:
    """Everything the scores need from one box list on one device, computed once (``_targets``): the CPU path's
    ``HostTargets`` of the box list, its arrays as device tensors, and what only this path uses."""

    host: HostTargets  # n (R * R), side (R), area (K, pixels inside the union), p_log_p, q_emd, as the CPU path's
    ks: torch.Tensor  # [T] int64: top-k counts of PERCENTILES, box_percentile, then K (relevance rank)
    union: torch.Tensor  # [n] int64 0 / 1
    places: torch.Tensor  # [n] int64 0 .. n - 1
    inv_rest: torch.Tensor  # [n] float32 1 / (n - j): the pixels from place j up
    masks: torch.Tensor  # [n, B] float32 box masks
    areas: torch.Tensor  # [B] float64 box areas
    sums: torch.Tensor  # [n, 2] float64: ones, union
    outside: torch.Tensor  # [n, 2] float32: outside the union, farther than the pointing_15 tolerance
    gt: torch.Tensor  # [n] float32 soft ground truth clipped to [0, 1] (mse)
    p: torch.Tensor  # [n] float64 soft ground truth + epsilon, summing to 1 (kl)
    rows: torch.Tensor  # [g, R] float32 area-resize matrix (emd), of the rows and (square grids) of the columns


@lru_cache(maxsize=32)
def _targets(boxes: tuple, side: int, box_percentile: float, device: str) -> Targets:
    """``host_targets``' arrays on ``device`` (the same values), with the box masks as one matrix."""
    h = host_targets(boxes, side, box_percentile)
    dev = torch.device(device)
    n = h.n
    union = h.outside_bit == 0  # [n] bool
    masks = box_masks(list(boxes), side).reshape(len(boxes), n)  # [B, n] bool
    # torch.tensor copies into torch's own (64-byte aligned) memory: BLAS results can depend on the operands'
    # alignment, and numpy's varies between processes (the Ray engine's workers must write the local engine's bytes)
    as_t = lambda a, dtype: torch.tensor(np.ascontiguousarray(a), dtype=dtype, device=dev)  # noqa: E731
    return Targets(
        host=h,
        ks=as_t(h.ks, torch.int64),
        union=as_t(union, torch.int64),
        places=torch.arange(n, device=dev),
        inv_rest=as_t(1.0 / (n - np.arange(n)), torch.float32),
        masks=as_t(masks.T, torch.float32),
        areas=as_t(h.areas, torch.float64),
        sums=as_t(np.stack([np.ones(n), union], axis=1), torch.float64),
        outside=as_t(np.stack([h.outside_bit, h.far], axis=1), torch.float32),
        gt=as_t(h.gt, torch.float32),
        p=as_t(h.p, torch.float64),
        rows=as_t(h.rows, torch.float32),
    )


@lru_cache(maxsize=32)
def _lerp(n_in: tuple[int, int], side: int, device: str) -> tuple:
    """``raster._lerp_indices`` along y and x as device tensors."""
    dev = torch.device(device)
    out = []
    for size in n_in:
        lo, hi, w = _lerp_indices(size, side)
        out += [torch.as_tensor(lo, device=dev), torch.as_tensor(hi, device=dev), torch.as_tensor(w, device=dev)]
    return tuple(out)


def upsample(maps: torch.Tensor, side: int) -> torch.Tensor:
    """``[c, gh, gw]`` float32 -> ``[c, R * R]``: ``raster.upsample``'s lerps in the same order (bit for bit on CPU)."""
    y0, y1, wy, x0, x1, wx = _lerp(tuple(maps.shape[-2:]), side, str(maps.device))
    top, bottom = maps.index_select(1, y0), maps.index_select(1, y1)  # [c, R, gw]
    rows = top + wy[:, None] * (bottom - top)  # [c, R, gw]
    left, right = rows.index_select(2, x0), rows.index_select(2, x1)  # [c, R, R]
    return (left + wx * (right - left)).reshape(maps.shape[0], -1)  # [c, n]


def ordered_bits(up: torch.Tensor) -> torch.Tensor:
    """``[c, n]`` int32 whose order is the float32 values' order (-0.0 and 0.0 equal), as ``ranking``'s keys."""
    bits = (up + 0.0).view(torch.int32)  # [c, n]
    return bits ^ ((bits >> 31) & 0x7FFFFFFF)


def sort_keys(keys: torch.Tensor) -> torch.Tensor:
    """Ascending sort of ``[c, n]`` int64 keys along the last axis: numpy's vectorised sort on the CPU."""
    if keys.device.type == "cpu":
        return torch.from_numpy(np.sort(keys.numpy(), axis=1))
    return torch.sort(keys, dim=1).values


def _cummax(x: torch.Tensor) -> torch.Tensor:
    if x.device.type == "cpu":
        return torch.from_numpy(np.maximum.accumulate(x.numpy(), axis=1))
    return torch.cummax(x, dim=1).values


def _ranks(ordered: torch.Tensor, t: Targets) -> tuple[torch.Tensor, ...]:
    """Expected hits ``[c, T]`` of the union at each ``t.ks``, the share of a tied pixel kept ``[c, T]``, pixel AP
    ``[c]`` and the thresholds ``[c, T]`` (as ordered bits)."""
    c, n = ordered.shape
    area = t.host.area
    keys = ordered.to(torch.int64)
    keys <<= 1
    keys |= t.union
    keys = sort_keys(keys)  # [c, n] ascending: value, then the inside bit
    inside = (keys & 1).float()  # [c, n] 0 / 1
    running = torch.cumsum(inside, dim=1)  # [c, n] inside pixels up to place j (float32: exact below 2^24)
    k = t.ks.expand(c, -1)  # [c, T]
    at = keys.gather(1, n - k) | 1  # [c, T] the k-th largest value's key with its inside bit set
    lo = torch.searchsorted(keys, at - 1, right=False)  # [c, T] first place at the threshold
    hi = torch.searchsorted(keys, at, right=True)  # [c, T] first place above it
    in_lo, in_hi = _before(running, lo), _before(running, hi)  # [c, T] inside pixels before those places
    share = (k - (n - hi)).double() / (hi - lo).double()  # [c, T] chance that a tied pixel is kept
    hits = (area - in_hi.double()) + share * (in_hi - in_lo).double()  # [c, T]
    # Pixel AP: a positive at place j scores the precision of the pixels >= its value, i.e. of the places from the
    # first of its tie group, g(j): the running maximum of the group starts (places ascend with the value).
    starts = torch.ones_like(inside, dtype=torch.bool)
    values = keys | 1  # [c, n] the value's key, whatever the inside bit
    starts[:, 1:] = values[:, 1:] != values[:, :-1]  # [c, n] where the value changes
    group = _cummax(starts * t.places)  # [c, n] int64
    precision = (area - running + inside) * t.inv_rest  # [c, n] float32, of the places from j up
    ap = (precision.gather(1, group) * inside).sum(dim=1).double() / area  # [c]
    return hits, share, ap, at >> 1


def _before(running: torch.Tensor, places: torch.Tensor) -> torch.Tensor:
    """``[c, T]`` the running count just before each place (0 before place 0)."""
    return torch.where(places > 0, running.gather(1, (places - 1).clamp(min=0)), 0)


def _chunk_scores(maps: torch.Tensor, t: Targets, box_column: int) -> dict[str, torch.Tensor]:
    """Every metric of ``[c, gh, gw]`` float32 maps, and ``box_iou`` ``[c, B]``."""
    n, area = t.host.n, t.host.area
    up = upsample(maps, t.host.side)  # [c, n]
    ordered = ordered_bits(up)  # [c, n] int32
    hits, share, ap, thresholds = _ranks(ordered, t)  # [c, T], [c, T], [c], [c, T]
    ks = t.ks.double()  # [T]
    ious = hits / (ks + area - hits)  # [c, T]
    out = {f"iou_{p}": ious[:, j] for j, p in enumerate(PERCENTILES)}
    out["iou_auc"] = ious[:, : len(PERCENTILES)].mean(dim=1)
    # Per-box IoU at box_percentile: pixels above and at its threshold inside each box, by matrix products.
    k_box = t.ks[box_column]
    threshold = thresholds[:, box_column : box_column + 1].to(torch.int32)  # [c, 1]
    above = (ordered > threshold).float() @ t.masks  # [c, B] exact counts (< 2^24)
    tied = (ordered == threshold).float() @ t.masks  # [c, B]
    box_hits = above.double() + share[:, box_column : box_column + 1] * tied.double()  # [c, B]
    out["box_iou"] = box_hits / (k_box + t.areas - box_hits)
    lo, hi = up.min(dim=1, keepdim=True).values, up.max(dim=1, keepdim=True).values  # [c, 1]
    sums = up.double() @ t.sums  # [c, 2]: all pixels, inside the union
    lo64 = lo.double()[:, 0]  # [c]
    total, inside = sums[:, 0] - n * lo64, sums[:, 1] - area * lo64  # [c] mass of up - min
    flat = lo[:, 0] == hi[:, 0]
    out["coverage"] = torch.where(flat, area / n, inside / torch.where(flat, 1.0, total))
    misses = (up == hi).float() @ t.outside  # [c, 2] peaks outside the union, beyond the tolerance
    out["pointing"], out["pointing_15"] = (misses[:, 0] == 0).double(), (misses[:, 1] == 0).double()
    if bool((lo < 0).any()):  # negative values carry no mass
        sums = up.clamp(min=0.0).double() @ t.sums  # [c, 2]
    out["relevance_mass"] = torch.where(sums[:, 0] > 0, sums[:, 1] / torch.where(sums[:, 0] > 0, sums[:, 0], 1.0), 0.0)
    out["relevance_rank"] = hits[:, -1] / area
    out["pxap"] = ap
    out.update(_continuous(up, lo, hi, t))
    return out


def _continuous(up: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, t: Targets) -> dict[str, torch.Tensor]:
    """mse, kl (reductions) and emd of upsampled maps ``[c, n]`` (``continuous``'s definitions).

    float32 where the error stays far below the 1e-5 the tests ask (sums are cascaded / pairwise in torch)."""
    n, side = t.host.n, t.host.side
    span = hi - lo  # [c, 1]
    scale = torch.where(span > 0, 1.0 / torch.where(span > 0, span, 1.0), 0.0)  # [c, 1] float32; 0 for a flat map
    m = ((up - lo) * scale).clamp(0.0, 1.0)  # [c, n] normalize_maps
    diff = m - t.gt  # [c, n] float32
    mse = (diff * diff).sum(dim=1).double() / n  # [c]
    log_q = torch.log(m + KL_EPSILON)  # [c, n] float32: relative error ~1e-7 per pixel
    totals = m.sum(dim=1).double() + n * KL_EPSILON  # [c]
    kl = (t.host.p_log_p - log_q.double() @ t.p + torch.log(totals)).clamp(min=0.0)  # [c]
    cells = (t.rows @ m.reshape(-1, side, side) @ t.rows.T).double()  # [c, g, g]
    mass = cells.sum(dim=(1, 2), keepdim=True)  # [c, 1, 1]
    dist = torch.where(mass > 0, cells / torch.where(mass > 0, mass, 1.0), 1.0 / cells[0].numel())
    workers = 1 if up.device.type == "cpu" else HOST_WORKERS  # beside a GPU, the host's cores solve them
    emd = wasserstein_grids(dist.cpu().numpy(), t.host.q_emd, workers)  # [c] exact, on the host
    return {"mse": mse, "kl": kl, "emd": torch.from_numpy(emd)}


@contextmanager
def _threads(n: int | None):
    """Runs the body with ``n`` torch CPU threads (None: unchanged), then restores the count. The passes over a
    chunk are memory-bound and short: on a shared 2-core machine OpenMP's barriers made them 5x slower with 2
    threads than with 1 (measured under load), and one thread leaves the other core to the caller's work."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _host_parts(maps: np.ndarray, h, box_column: int) -> list[dict]:
    """``host_scores`` of ``[N, gh, gw]`` maps in blocks of at most ``HOST_CHUNK``, on up to ``host_threads()``
    threads: as many blocks as a multiple of the threads, of sizes within one, so the threads end together."""
    threads = min(host_threads(), -(-len(maps) // HOST_CHUNK))
    blocks = threads * -(-len(maps) // (HOST_CHUNK * threads))
    score = lambda part: _host_block(part, h, box_column)  # noqa: E731
    parts = np.array_split(maps, blocks)
    if threads <= 1:
        return [score(part) for part in parts]
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(score, parts))


def _host_block(maps: np.ndarray, h, box_column: int) -> dict:
    """``host_scores`` of one block with a free set of ``Buffers`` from ``_BUFFERS`` (one per block scored at the
    same time, kept between calls: ~0.55 MB per map of ``HOST_CHUNK`` at R = 224)."""
    with _BUFFERS_LOCK:
        buffers = _BUFFERS.pop() if _BUFFERS else Buffers()
    try:
        return host_scores(maps, h, box_column, buffers)
    finally:
        with _BUFFERS_LOCK:
            _BUFFERS.append(buffers)


def host_threads() -> int:
    """Threads scoring on the CPU: ``HOST_THREADS``, at most the caller's torch threads (the cores ``analyze``
    uses; 1 in a Ray worker that asks for one CPU)."""
    return max(1, min(HOST_THREADS, torch.get_num_threads()))


def score_maps(
    heatmaps: np.ndarray | torch.Tensor,
    boxes,
    resolution: int = 224,
    *,
    box_percentile: float = 90,
    device: str | torch.device | None = None,
) -> BatchScores:
    """All metrics of a stack of maps against one box list, computed together on ``device``.

    Args:
        heatmaps: ``[N, gh, gw]`` maps on the patch grid (numpy or torch), row 0 at the top, the whole image.
        boxes: non-empty list of normalized boxes ``(x0, y0, x1, y1)`` (or ``LabeledBox``).
        resolution: side ``R`` of the grid the metrics are computed on.
        box_percentile: percentile of the per-box IoU (``BatchScores.box_iou``).
        device: where to compute (default: the tensor's device, else the CPU).

    Returns:
        ``BatchScores`` equal to ``scores.score_batch``'s (to 1e-5).
    """
    if isinstance(heatmaps, torch.Tensor):
        device = device or heatmaps.device
        heatmaps = heatmaps.detach().float().cpu().numpy()
    maps = torch.from_numpy(check_heatmaps(heatmaps, ndim=3))  # [N, gh, gw] float32, checked
    device = str(torch.device(device or "cpu"))
    side = check_resolution(resolution)
    box_column = len(PERCENTILES)
    if device == "cpu" and CPU_PATH == "numpy":
        h = host_targets(tuple(check_boxes(boxes)), side, check_percentile(box_percentile))
        parts = _host_parts(maps.numpy(), h, box_column)
        joined = {k: np.concatenate([p[k] for p in parts]).astype(np.float64) for k in parts[0]}
        box_iou = joined.pop("box_iou")
        return BatchScores(metrics=joined, box_iou=box_iou)
    t = _targets(tuple(check_boxes(boxes)), side, check_percentile(box_percentile), device)
    chunk = CPU_CHUNK if device == "cpu" else DEVICE_CHUNK
    parts = []
    with torch.no_grad(), _threads(1 if device == "cpu" else None):
        for start in range(0, maps.shape[0], chunk):
            block = maps[start : start + chunk].to(device, non_blocking=True)
            parts.append({k: v.cpu() for k, v in _chunk_scores(block, t, box_column).items()})
    joined = {k: torch.cat([p[k] for p in parts]).double().numpy() for k in parts[0]}
    box_iou = joined.pop("box_iou")
    return BatchScores(metrics=joined, box_iou=box_iou)
