"""GAE (Chefer et al. 2021): cases worked out on paper, a model whose relevance is known, targets and errors.

The comparison with the authors' recipe on random weights is in test_references.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_models import noise_image, small_model, small_overrides

import vitattn
from vitattn.methods import METHODS, relevance_matrices
from vitattn.trace import Trace


def hand_trace(attentions, grads, *, num_prefix, grid, pool=None) -> Trace:
    as_t = [torch.tensor(np.array(a), dtype=torch.float32)[None] for a in attentions]  # (1, H, T, T) each
    return Trace(
        grids=tuple(grid for _ in attentions),
        num_prefix=num_prefix,
        has_cls=num_prefix > 0,
        features=[],
        attentions=as_t,
        relevance_grads=[torch.tensor(np.array(g), dtype=torch.float32)[None] for g in grads],
        pool=None if pool is None else torch.tensor(pool, dtype=torch.float32)[None],
    )


def test_relevance_worked_on_paper():
    """CLS + 2 patches, 2 heads, 2 layers.

    Layer 0: only the CLS row has gradient. grad * A at row 0: head 0 [2, 2, 2] * [.5, .5, 0] = [1, 1, 0],
    head 1 [2, -2, -2] * [.5, 0, .5] = [1, 0, -1] -> ReLU [1, 0, 0]; mean over heads: A_bar row 0 = [1, .5, 0].
    R0 = I + A_bar @ I = [[2, .5, 0], [0, 1, 0], [0, 0, 1]] -> CLS row, patches: [.5, 0].
    Layer 1: every row attends to patch 2 (row 1 to itself), gradient 1 everywhere: A_bar = A.
    A_bar @ R0 = [R0[2], R0[1], R0[2]] = [[0, 0, 1], [0, 1, 0], [0, 0, 1]];
    R1 = [[2, .5, 1], [0, 2, 0], [0, 0, 2]] -> patches [.5, 1].
    """
    eye = np.eye(3)
    a0 = [[[0.5, 0.5, 0.0], *eye[1:]], [[0.5, 0.0, 0.5], *eye[1:]]]
    g0 = [[[2.0, 2.0, 2.0], [0] * 3, [0] * 3], [[2.0, -2.0, -2.0], [0] * 3, [0] * 3]]
    a1 = [[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]] * 2
    g1 = [np.ones((3, 3))] * 2
    trace = hand_trace([a0, a1], [g0, g1], num_prefix=1, grid=(1, 2))
    r0, r1 = relevance_matrices(trace.attentions, trace.relevance_grads)
    np.testing.assert_allclose(r0[0].numpy(), [[2, 0.5, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(r1[0].numpy(), [[2, 0.5, 1], [0, 2, 0], [0, 0, 2]])
    maps = METHODS["gae"](trace)
    np.testing.assert_allclose(maps[0].fused[0].numpy(), [[0.5, 0.0]])
    np.testing.assert_allclose(maps[1].fused[0].numpy(), [[0.5, 1.0]])
    assert maps[0].heads is None


def test_relevance_without_cls_reads_the_pooling_row_on_paper():
    """SigLIP-like: 2 patches, no prefix, 2 heads. Pool heads [0, 1] and [.5, .5] -> mean [.25, .75].
    A = [[1, 0], [1, 0]], grad = [[1, 0], [3, 0]] in both heads -> A_bar = [[1, 0], [3, 0]];
    R = I + A_bar = [[2, 0], [3, 1]]; readout [.25, .75] @ R = [.5 + 2.25, .75] = [2.75, .75]."""
    a = [[[1.0, 0.0], [1.0, 0.0]]] * 2
    g = [[[1.0, 0.0], [3.0, 0.0]]] * 2
    trace = hand_trace([a], [g], num_prefix=0, grid=(1, 2), pool=[[0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(METHODS["gae"](trace)[0].fused[0].numpy(), [[2.75, 0.75]])


def test_a_network_whose_attention_reaches_nothing_has_zero_relevance():
    """With every attention output projection zero, the class score does not depend on any attention weight: the
    gradient is 0, R stays I, and the CLS row has no patch relevance at any layer (a model known on paper)."""
    torch.manual_seed(0)
    model = vitattn.load_model("vit", pretrained=False, device="cpu", **small_overrides("vit"))
    for blk in model.module.blocks:
        blk.attn.proj.weight.data.zero_()
    a = model.analyze(noise_image(seed=3), methods=["gae", "cls"])
    for layer in a.layers("gae"):
        np.testing.assert_array_equal(a.map("gae", layer), 0)
    assert a.map("cls").max() > 0  # the attention itself is there


def test_one_layer_relevance_is_the_gradient_weighted_cls_attention():
    """After layer 0, R = I + A_bar: the map is the patch part of row 0 of mean_h ReLU(grad * A), rebuilt here from
    the trace's attention and gradient (checks the wiring from the adapter to the map; the gradient itself is
    checked against the authors' recipe in test_references.py)."""
    model, image = small_model("vit"), noise_image(seed=4)
    trace = model.adapter.trace(model.transform(image)[None], relevance=True)
    a0, g0 = trace.attentions[0][0], trace.relevance_grads[0][0]  # (H, T, T)
    expected = torch.relu(g0 * a0).mean(0)[0, 1:].reshape(model.spec.grid)
    np.testing.assert_allclose(model.analyze(image, methods=["gae"]).map("gae", 0), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ["vit", "clip", "siglip"])
def test_a_batch_equals_single_images(name):
    model = small_model(name)
    images = [noise_image(90, 60, seed=s) for s in range(3)]
    batched = model.analyze(images, methods=["gae"], batch_size=3)
    for image, b in zip(images, batched, strict=True):
        np.testing.assert_allclose(b.map("gae"), model.analyze(image, methods=["gae"]).map("gae"), rtol=1e-4, atol=1e-9)


def test_agcam_is_unchanged_when_gae_runs_beside_it():
    """The two gradient paths differ (AG-CAM detaches attention inputs), so asking for both must give each its own."""
    model, image = small_model("vit"), noise_image(seed=5)
    both = model.analyze(image, methods=["agcam", "gae"])
    alone = model.analyze(image, methods=["agcam"]), model.analyze(image, methods=["gae"])
    for layer in range(model.spec.num_layers):
        np.testing.assert_array_equal(both.map("agcam", layer), alone[0].map("agcam", layer))
        np.testing.assert_array_equal(both.map("gae", layer), alone[1].map("gae", layer))
    assert both.target == alone[0].target == alone[1].target


def test_every_vit_has_gae_and_resnet_does_not():
    for name, spec in vitattn.MODELS.items():
        assert ("gae" in spec.methods) == (spec.family == "vit"), name
    with pytest.raises(ValueError, match="no method"):
        small_model("resnet50").analyze(noise_image(), methods=["gae"])


def test_an_embedding_model_takes_no_target():
    with pytest.raises(ValueError, match="not a classifier"):
        small_model("dinov2").analyze(noise_image(), methods=["gae"], target=3)
    a = small_model("dinov2").analyze(noise_image(), methods=["gae"])
    assert a.target is None and np.isfinite(a.map("gae")).all()


def test_gae_without_gradients_is_an_error():
    trace = hand_trace([[[[1.0]]]], [[[[1.0]]]], num_prefix=1, grid=(1, 0))
    trace.relevance_grads = None
    with pytest.raises(ValueError, match="gradients"):
        METHODS["gae"](trace)
