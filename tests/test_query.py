"""`vitattn.query` against references computed here: the attention row of one query patch.

- Reference: for the tiny random ViTs of ``small_models`` (dinov2 with registers, siglip without prefix, a vit
  classifier), each block's attention input is captured with a plain forward hook on ``block.attn``, and
  ``softmax(q k^T / sqrt(d))`` is computed here in float64 numpy from the block's own ``qkv`` linear weights.
- A case worked out by hand: q and k weights zeroed, so every score is 0 and attention is uniform: every patch
  gets ``1 / T`` and the prefix ``num_prefix / T``.
- Rows sum to 1 with the prefix; the index convention is row-major ``r * gw + c``, row 0 at the top (README).
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from small_models import noise_image, small_model

from vitattn.query import AttentionRows, attention_rows, query_attention, query_cell

VITS = ("dinov2", "siglip", "vit")


def reference_attention(model, image) -> list[np.ndarray]:
    """Per layer ``[H, T, T]`` softmax(q k^T / sqrt(d)) from each block's qkv weights on its attention input."""
    inputs: dict[int, torch.Tensor] = {}
    blocks = list(model.module.blocks)
    hooks = [
        b.attn.register_forward_hook(lambda _m, args, _out, i=i: inputs.__setitem__(i, args[0].detach()))
        for i, b in enumerate(blocks)
    ]
    try:
        with torch.no_grad():
            model.module(model.transform(image).unsqueeze(0))
    finally:
        for h in hooks:
            h.remove()
    out = []
    for i, block in enumerate(blocks):
        attn = block.attn
        assert isinstance(attn.q_norm, torch.nn.Identity) and isinstance(attn.k_norm, torch.nn.Identity)
        x = inputs[i][0].double().numpy()  # [T, D]
        w = attn.qkv.weight.detach().double().numpy()  # [3D, D]
        b = attn.qkv.bias.detach().double().numpy() if attn.qkv.bias is not None else 0.0
        heads = attn.num_heads
        qkv = (x @ w.T + b).reshape(x.shape[0], 3, heads, -1)  # [T, 3, H, d]  (timm's layout)
        q, k = qkv[:, 0].transpose(1, 0, 2), qkv[:, 1].transpose(1, 0, 2)  # [H, T, d]
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])  # [H, T, T]
        scores -= scores.max(-1, keepdims=True)
        e = np.exp(scores)
        out.append(e / e.sum(-1, keepdims=True))
    return out


@pytest.mark.parametrize("name", VITS)
def test_query_row_matches_softmax_of_the_blocks_own_q_and_k(name):
    model, image = small_model(name), noise_image(seed=3)
    want = reference_attention(model, image)
    rows = attention_rows(model, image)
    gh, gw = rows.grid
    p = model.spec.num_prefix_tokens
    assert rows.num_prefix == p and rows.weights.shape == (2, 4, p + gh * gw, p + gh * gw)
    for r, c in [(0, 0), (1, 2), (gh - 1, gw - 1)]:
        q = rows.query((r, c))
        token = p + r * gw + c
        for layer, ref in enumerate(want):
            row = ref[:, token, :]  # [H, T]
            got = np.concatenate([q.prefix[layer][:, None], q.maps[layer].reshape(4, -1)], axis=1)
            expect = np.concatenate([row[:, :p].sum(1, keepdims=True), row[:, p:]], axis=1)
            assert np.max(np.abs(got - expect) / np.abs(expect).max()) < 1e-5, (name, r, c, layer)
            np.testing.assert_allclose(q.maps[layer], row[:, p:].reshape(4, gh, gw), rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(q.map(layer), row[:, p:].mean(0).reshape(gh, gw), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", VITS)
def test_uniform_attention_gives_every_patch_one_over_t(name):
    model = copy.deepcopy(small_model(name))
    for block in model.module.blocks:
        d = block.attn.qkv.out_features // 3
        with torch.no_grad():  # q = k = 0: every score is 0, softmax is uniform over the T tokens
            block.attn.qkv.weight[: 2 * d] = 0
            if block.attn.qkv.bias is not None:
                block.attn.qkv.bias[: 2 * d] = 0
    q = query_attention(model, noise_image(seed=1), (0.6, 0.2))
    t = q.num_prefix + q.grid[0] * q.grid[1]
    np.testing.assert_allclose(q.maps, 1.0 / t, rtol=1e-6)
    np.testing.assert_allclose(q.prefix, q.num_prefix / t, rtol=1e-6, atol=1e-9)
    assert q.prefix_share(1) == pytest.approx(q.num_prefix / t, rel=1e-6)


@pytest.mark.parametrize("name", (*VITS, "dinov3"))  # dinov3: rotary attention (timm's Eva)
def test_rows_sum_to_one_with_the_prefix(name):
    model = small_model(name)
    q = query_attention(model, noise_image(seed=2), (0.5, 0.5))
    assert q.num_prefix == model.spec.num_prefix_tokens and q.has_cls == (name != "siglip")
    np.testing.assert_allclose(q.maps.sum((2, 3)) + q.prefix, 1.0, atol=1e-5)
    assert (q.maps >= 0).all() and (q.prefix >= 0).all()
    if name == "siglip":
        assert not q.prefix.any()  # no prefix tokens: all attention is on patches
    else:
        assert (q.prefix > 0).all()
    assert q.prefix_share(0) == pytest.approx(float(q.prefix[0].mean()))


def test_index_convention_row_major_row_zero_at_the_top():
    # A hand-made layer where every query attends to itself only: the map of query (r, c) is 1 at (r, c).
    gh, gw, p = 3, 4, 2
    t = p + gh * gw
    weights = np.broadcast_to(np.eye(t, dtype=np.float32), (1, 2, t, t)).copy()
    rows = AttentionRows("hand", (gh, gw), p, True, weights)
    q = rows.query((0, 3))  # the top-right patch is token p + 0 * gw + 3
    assert q.index == 3 and q.map(0, 1)[0, 3] == 1.0 and q.map(0).sum() == 1.0 and q.prefix_share(0) == 0.0
    assert rows.query((2, 1)).map(0)[2, 1] == 1.0 and rows.query((2, 1)).index == 2 * gw + 1
    # a normalized point: x to the right, y down; row 0 at the top, the last cell at 1.0
    assert query_cell((0.99, 0.01), (gh, gw)) == (0, 3)
    assert query_cell((0.0, 1.0), (gh, gw)) == (2, 0)
    assert query_cell((0.25, 1 / 3), (gh, gw)) == (1, 1)  # on shared edges: the right and the lower cell
    # a CLS-only layer: the prefix row of query (1, 1) goes to token 0
    weights = np.zeros((1, 1, t, t), dtype=np.float32)
    weights[..., 0] = 1.0
    q = AttentionRows("hand", (gh, gw), p, True, weights).query((1, 1))
    assert q.prefix_share(0, 0) == 1.0 and not q.maps.any()


def test_the_real_model_follows_the_same_convention():
    # The tiny dinov2 (4 x 4 grid, CLS + 4 registers): the query at the point (0.9, 0.1) is the top-right patch,
    # token 5 + 3, and its row is the adapter's weights at that token.
    model = small_model("dinov2")
    rows = attention_rows(model, noise_image(seed=4))
    q = rows.query(query_cell((0.9, 0.1), rows.grid))
    assert q.cell == (0, 3) and q.index == 3
    np.testing.assert_array_equal(q.maps[1, 2].ravel(), rows.weights[1, 2, 5 + 3, 5:])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: attention_rows(small_model("resnet50"), noise_image()), "resnet50 (resnet) has no attention"),
        (lambda: query_attention(small_model("vit"), noise_image(), (1.2, 0.5)), "region"),
        (lambda: attention_rows(small_model("vit"), noise_image()).query((4, 0)), "outside the 4x4 grid"),
        (lambda: attention_rows(small_model("vit"), noise_image()).query((0.5, 1)), "two integers"),
        (lambda: query_attention(small_model("vit"), noise_image(), (0.5, 0.5)).map(2), "layer 2 out of range"),
        (lambda: query_attention(small_model("vit"), noise_image(), (0.5, 0.5)).map(0, 4), "head 4 out of range"),
        (lambda: AttentionRows("x", (2, 2), 1, True, np.zeros((1, 1, 4, 4), np.float32)), "T = 1 + 2x2"),
    ],
)
def test_bad_input_is_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
