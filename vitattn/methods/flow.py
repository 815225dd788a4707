"""Attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers", ACL, sec. 3).

The layered graph of tokens: a node per token at the input and after every block, and from token ``k`` below block
``i`` to token ``q`` above it an edge of capacity ``A'_i[q, k]``, where ``A'_i`` is the matrix rollout multiplies
(heads fused by mean, ``0.5 A + 0.5 I``, rows renormalised: `rollout.residual_attention`). The map at layer ``l``
gives each input patch ``p`` the maximum flow from ``p`` at the input to the readout after block ``l``:

* the CLS token after block ``l`` (models with a CLS token);
* SigLIP (no CLS): a pooled sink fed by every token after block ``l`` with capacity ``1 / T``, the uniform readout
  rollout uses for it (`rollout.rollout`).

Registers and CLS are nodes of the graph (flow may pass through them) but never sources: they are no pixels of the
map. The direction does not matter: Abnar & Zuidema's code (github.com/samiraabnar/attention_flow) sends flow from
the output down; a max-flow value is the same on the reversed graph. Their code then divides each output token's
row by its sum; we keep the raw flow value (a constant factor per map).

Exact max-flow: capacities are scaled by ``S = (2**31 - 1) // (T + 1)`` and rounded to integers (int32, so the flow
out of a source, at most ``T``, fits), and scipy's Dinic (`scipy.sparse.csgraph.maximum_flow`) solves each patch's
problem exactly on them; the value is divided by ``S`` again (error at most ``0.5 / S`` per cut edge). It costs one
max-flow per patch and layer, so it is computed only where asked (``analyze(..., methods=["flow"],
flow_layers=...)``, ``precompute --flow-layers``); docs/trust.md gives the cost per image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.sparse import csr_array
from scipy.sparse.csgraph import maximum_flow

from ..tokens import patch_values
from ..trace import Maps, Trace
from .rollout import residual_attention

INT32_MAX = 2**31 - 1


def flow_graph(matrices: Sequence[np.ndarray], readout: np.ndarray) -> tuple[csr_array, int, float]:
    """The integer-capacity layered graph of ``len(matrices)`` blocks and its sink.

    Args:
        matrices: per block ``(T, T)`` capacities ``A'[q, k]`` (rows = queries = the token above).
        readout: ``(T,)`` capacity from each top token to the sink (CLS: ``e_0``; pooled: ``1 / T`` each).

    Returns:
        ``(graph, sink, scale)``: node ``j * T + t`` is token ``t`` below block ``j`` (``j = n`` is the top), the
        sink is node ``(n + 1) * T``, and capacities are ``round(c * scale)``.
    """
    t = readout.shape[0]
    n = len(matrices)
    scale = float(INT32_MAX // (t + 1))
    rows, cols, caps = [], [], []
    for i, a in enumerate(matrices):
        a = np.asarray(a, dtype=np.float64)  # (T, T)
        if i == n - 1:
            a = a * (readout > 0)[:, None]  # only tokens feeding the sink matter at the top
        q, k = np.nonzero(np.rint(a * scale) > 0)  # edge (i, k) -> (i + 1, q)
        rows.append(i * t + k)
        cols.append((i + 1) * t + q)
        caps.append(np.rint(a[q, k] * scale))
    top = np.nonzero(readout > 0)[0]
    rows.append(n * t + top)
    cols.append(np.full(top.shape, (n + 1) * t))
    caps.append(np.rint(readout[top] * scale))
    size = (n + 1) * t + 1
    graph = csr_array(
        (np.concatenate(caps).astype(np.int32), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size)
    )
    return graph, size - 1, scale


def flow_values(matrices: Sequence[np.ndarray], readout: np.ndarray, sources: Sequence[int]) -> np.ndarray:
    """Max flow from each source token at the input to the sink; ``(T,)`` float64, 0 for tokens not in ``sources``."""
    graph, sink, scale = flow_graph(matrices, readout)
    out = np.zeros(readout.shape[0], dtype=np.float64)
    for s in sources:
        out[s] = maximum_flow(graph, int(s), sink).flow_value / scale
    return out


def flow(trace: Trace, layers: Sequence[int] | None = None) -> dict[int, Maps]:
    """Attention flow to the readout after each layer asked (default: the last only); heads fused by definition.

    Args:
        trace: a ViT's trace (attention weights).
        layers: layers (negative counts from the end); None: the last.

    Raises:
        ValueError: no attention weights, or a layer out of range.
    """
    if trace.attentions is None:
        raise ValueError("flow needs attention weights (a ViT)")
    n = trace.num_layers
    asked = [n - 1] if layers is None else list(layers)
    bad = [x for x in asked if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not -n <= x < n]
    if bad:
        raise ValueError(f"flow layers {bad} out of range for a model with {n} layers (valid {-n}..{n - 1})")
    asked = sorted({int(x) % n for x in asked})
    mats = [residual_attention(a.double()).cpu().numpy() for a in trace.attentions[: asked[-1] + 1]]  # (B, T, T)
    b, t, _ = mats[0].shape
    readout = np.zeros(t) if trace.has_cls else np.full(t, 1.0 / t)
    readout[0] = 1.0 if trace.has_cls else readout[0]  # CLS: its inflow is at most 1 (rows of A' sum to 1)
    sources = range(trace.num_prefix, t)  # patches only: prefix tokens are nodes, never pixels
    out = {}
    for layer in asked:
        values = np.stack([flow_values([m[i] for m in mats[: layer + 1]], readout, sources) for i in range(b)])
        row = torch.from_numpy(values).to(trace.attentions[0].dtype)  # (B, T)
        out[layer] = Maps(None, patch_values(row, trace.num_prefix, trace.grids[layer]))
    return out
