"""Attention flow (vitattn.methods.flow, Abnar & Zuidema 2020 sec. 3) against networkx on small random-weight ViTs,
equal to rollout where the graph has one path, and computed only when asked."""

import networkx as nx
import numpy as np
import pytest
import torch
from small_models import noise_image, small_model

import vitattn
from vitattn.methods import METHODS
from vitattn.methods.flow import flow_values
from vitattn.trace import Trace

IMAGE = noise_image(70, 50, seed=5)
VITS = [n for n, s in vitattn.MODELS.items() if s.family == "vit"]


def _capacities(attn: torch.Tensor) -> np.ndarray:
    """The capacities of one block, written out independently: head mean, 0.5 A + 0.5 I, rows renormalised."""
    a = attn[0].double().numpy().mean(0)  # (T, T)
    a = 0.5 * a + 0.5 * np.eye(a.shape[0])
    return a / a.sum(1, keepdims=True)


def _networkx_flow(mats: list[np.ndarray], has_cls: bool, num_prefix: int) -> np.ndarray:
    """Max flow from each input patch to the readout after the last of ``mats`` with networkx (float capacities)."""
    t = mats[0].shape[0]
    g = nx.DiGraph()
    for i, a in enumerate(mats):
        for q in range(t):
            for k in range(t):
                g.add_edge((i, k), (i + 1, q), capacity=float(a[q, k]))
    top = len(mats)
    if has_cls:
        sink = (top, 0)
    else:
        sink = "pool"
        for q in range(t):
            g.add_edge((top, q), sink, capacity=1.0 / t)
    return np.array([nx.maximum_flow_value(g, (0, p), sink) for p in range(num_prefix, t)])


@pytest.mark.parametrize("name", ["dinov2", "siglip"])
def test_flow_equals_networkx_at_two_layers(name):
    model = small_model(name)
    x = model.transform(IMAGE)[None]
    trace = model.adapter.trace(x)
    analysis = model.analyze(IMAGE, methods=["flow"], flow_layers=[0, 1], features=False)
    assert analysis.layers("flow") == (0, 1)
    mats = [_capacities(a) for a in trace.attentions]
    for layer in (0, 1):
        expected = _networkx_flow(mats[: layer + 1], trace.has_cls, trace.num_prefix)
        got = analysis.map("flow", layer).ravel()  # registers (dinov2) are nodes, never pixels
        assert got.shape == (model.spec.grid[0] * model.spec.grid[1],)
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not np.allclose(analysis.map("flow", 0), analysis.map("flow", 1))


@pytest.mark.parametrize("name", VITS)
def test_flow_equals_rollout_where_the_graph_has_one_path(name):
    """After one block the only path from a patch to the readout is its edge: flow = rollout (CLS models; SigLIP's
    pooled sink has many paths, one per top token)."""
    model = small_model(name)
    a = model.analyze(IMAGE, methods=["flow", "rollout"], flow_layers=[0], features=False)
    if model.spec.num_prefix_tokens:
        np.testing.assert_allclose(a.map("flow", 0), a.map("rollout", 0), atol=1e-6)
    assert "flow" not in model.analyze(IMAGE, features=False).methods  # never computed unless asked


def _trace(attentions: list[np.ndarray], grid=(2, 2)) -> Trace:
    atts = [torch.tensor(a, dtype=torch.float32)[None, None] for a in attentions]  # (1, 1, T, T)
    return Trace(grids=(grid,) * len(atts), num_prefix=1, has_cls=True, features=[], attentions=atts)


def test_one_path_through_cls_self_loops_keeps_flow_equal_to_rollout_at_every_layer():
    rng = np.random.default_rng(0)
    t = 5
    first = rng.random((t, t))
    first /= first.sum(1, keepdims=True)
    later = []
    for _ in range(2):  # the CLS token attends only to itself after block 0: one path, capacity 1 above block 0
        a = rng.random((t, t))
        a[0] = np.eye(t)[0]
        later.append(a / a.sum(1, keepdims=True))
    trace = _trace([first, *later])
    flows = METHODS["flow"](trace, layers=[0, 1, 2])
    rolls = METHODS["rollout"](trace)
    for layer in range(3):
        np.testing.assert_allclose(flows[layer].fused.numpy(), rolls[layer].fused.numpy(), atol=1e-6)


def test_a_chain_of_two_edges_flows_its_minimum_where_rollout_multiplies():
    # 3 tokens; block 0: token 1 reads token 2 (A'_0[1] = 0.5 e1 + 0.5 e2); block 1: CLS reads token 1 (A'_1[0] =
    # 0.5 e0 + 0.5 e1). From patch 2 the one path 2 -> 1 -> CLS has capacities 0.5 and 0.5: flow 0.5, rollout
    # 0.5 * 0.5 = 0.25.
    a0 = np.array([[1.0, 0, 0], [0, 0.5, 0.5], [0, 0, 1]])
    a1 = np.array([[0.5, 0.5, 0], [0, 1, 0], [0, 0, 1]])
    assert flow_values([a0, a1], np.array([1.0, 0, 0]), [1, 2]).tolist() == pytest.approx([0, 0.5, 0.5])
    assert (a1 @ a0)[0, 2] == 0.25


def test_flow_is_refused_where_it_cannot_be_computed():
    with pytest.raises(ValueError, match="no method"):
        small_model("resnet50").analyze(IMAGE, methods=["flow"])
    with pytest.raises(ValueError, match="out of range"):
        small_model("vit").analyze(IMAGE, methods=["flow"], flow_layers=[5])
    a = small_model("vit").analyze(IMAGE, methods=["flow"], flow_layers=[-1], features=False)
    assert a.layers("flow") == (1,)
