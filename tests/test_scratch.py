"""course_lib.scratch against torch.nn.functional: values, gradients, and naive vs fast."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import scratch

TOL = {np.float32: 2e-4, np.float64: 1e-10}


def _close(name: str, got, want, tol: float, case) -> None:
    """Assert closeness and say which case failed and by how much."""
    want = want.detach().numpy() if torch.is_tensor(want) else want
    assert got.shape == want.shape, f"{name}: shape {got.shape} != {want.shape} for {case}"
    err = float(np.max(np.abs(got - want), initial=0.0))
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    assert err <= tol * scale, f"{name}: max abs error {err:.3g} > {tol * scale:.3g} for {case}"


@st.composite
def conv_cases(draw):
    """Random conv2d problems, including 1x1 and non-square kernels, non-square images,
    stride larger than the kernel, padding, dilation, batch 1 and one channel."""
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    f = draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h = draw(st.integers(max(1, d[0] * (kh - 1) + 1 - 2 * p[0]), 12))
    w = draw(st.integers(max(1, d[1] * (kw - 1) + 1 - 2 * p[1]), 12))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return dict(
        shape=(n, c, h, w), wshape=(f, c, kh, kw), s=s, p=p, d=d, dtype=dtype, bias=bias, seed=seed
    )


def _make(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(case["dtype"])
    w = rng.standard_normal(case["wshape"]).astype(case["dtype"])
    b = rng.standard_normal(case["wshape"][0]).astype(case["dtype"]) if case["bias"] else None
    return rng, x, w, b


@given(conv_cases())
def test_conv2d_forward_and_backward_match_torch(case):
    rng, x, w, b = _make(case)
    s, p, d, tol = case["s"], case["p"], case["d"], TOL[case["dtype"]]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if b is not None else None
    yt = F.conv2d(xt, wt, bt, stride=s, padding=p, dilation=d)
    for fn in (scratch.conv2d, scratch.conv2d_naive):
        y = fn(x, w, b, stride=s, padding=p, dilation=d)
        assert y.dtype == x.dtype, f"{fn.__name__} returned {y.dtype} for {x.dtype} input"
        _close(fn.__name__, y, yt, tol, case)
    dout = rng.standard_normal(yt.shape).astype(case["dtype"])
    yt.backward(torch.tensor(dout))
    db_want = dout.sum(axis=(0, 2, 3))
    for fn in (scratch.conv2d_backward, scratch.conv2d_backward_naive):
        dx, dw, db = fn(dout, x, w, stride=s, padding=p, dilation=d)
        _close(f"{fn.__name__} dx", dx, xt.grad, tol, case)
        _close(f"{fn.__name__} dw", dw, wt.grad, tol, case)
        _close(f"{fn.__name__} db", db, bt.grad if bt is not None else db_want, tol, case)


@st.composite
def pool_cases(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = draw(st.one_of(st.none(), st.tuples(st.integers(1, 5), st.integers(1, 5))))
    h, w = draw(st.integers(k[0], 12)), draw(st.integers(k[1], 12))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return dict(shape=(n, c, h, w), k=k, s=s, dtype=dtype, seed=draw(st.integers(0, 2**31 - 1)))


@pytest.mark.parametrize("kind", ["max", "avg"])
@given(case=pool_cases())
def test_pooling_forward_and_backward_match_torch(kind, case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"]).astype(case["dtype"])
    xt = torch.tensor(x, requires_grad=True)
    torch_fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    forward = getattr(scratch, f"{kind}_pool2d")
    backward = getattr(scratch, f"{kind}_pool2d_backward")
    yt = torch_fn(xt, case["k"], case["s"])
    tol = TOL[case["dtype"]]
    _close(f"{kind}_pool2d", forward(x, case["k"], case["s"]), yt, tol, case)
    dout = rng.standard_normal(yt.shape).astype(case["dtype"])
    yt.backward(torch.tensor(dout))
    _close(f"{kind}_pool2d_backward", backward(dout, x, case["k"], case["s"]), xt.grad, tol, case)


@pytest.mark.parametrize(
    "s, p, d", [(1, 0, 1), (1, 1, 1), (2, 1, 1), ((1, 2), (0, 1), (2, 1)), (3, 2, 2)]
)
def test_conv2d_gradients_pass_numerical_check_float64(s, p, d):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 5))
    w = rng.standard_normal((3, 2, 3, 2))
    b = rng.standard_normal(3)
    y = scratch.conv2d(x, w, b, s, p, d)
    dout = rng.standard_normal(y.shape)
    dx, dw, db = scratch.conv2d_backward(dout, x, w, s, p, d)
    checks = {
        "dx": (dx, scratch.numerical_gradient(lambda v: scratch.conv2d(v, w, b, s, p, d), x, dout)),
        "dw": (dw, scratch.numerical_gradient(lambda v: scratch.conv2d(x, v, b, s, p, d), w, dout)),
        "db": (db, scratch.numerical_gradient(lambda v: scratch.conv2d(x, w, v, s, p, d), b, dout)),
    }
    for name, (analytic, numeric) in checks.items():
        err = scratch.relative_error(analytic, numeric)
        assert err < 1e-6, (
            f"{name}: relative error {err:.2e} for stride={s} padding={p} dilation={d}"
        )


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("k, s", [(2, None), (3, 1), ((2, 3), (1, 2))])
def test_pooling_gradients_pass_numerical_check_float64(kind, k, s):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 6))
    forward = getattr(scratch, f"{kind}_pool2d")
    dout = rng.standard_normal(forward(x, k, s).shape)
    analytic = getattr(scratch, f"{kind}_pool2d_backward")(dout, x, k, s)
    numeric = scratch.numerical_gradient(lambda v: forward(v, k, s), x, dout)
    err = scratch.relative_error(analytic, numeric)
    assert err < 1e-6, f"{kind} pool kernel={k} stride={s}: relative error {err:.2e}"


def test_numerical_gradient_leaves_input_unchanged_and_is_exact_on_a_quadratic():
    x = np.arange(6.0).reshape(2, 3)
    before = x.copy()
    g = scratch.numerical_gradient(lambda v: v**2, x, np.ones_like(x))
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-8)


def test_max_pool_backward_sends_gradient_only_to_the_maximum():
    x = np.array([[[[1.0, 5.0], [3.0, 2.0]]]])
    dx = scratch.max_pool2d_backward(np.array([[[[7.0]]]]), x, 2)
    np.testing.assert_array_equal(dx, [[[[0.0, 7.0], [0.0, 0.0]]]])


def test_conv2d_on_float32_photo_agrees_with_torch_to_1e_5():
    """The notebook's claim: max abs difference < 1e-5 against torch on realistic data."""
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 32, 32), dtype=np.float32)
    w = (rng.standard_normal((8, 3, 3, 3)) / 9).astype(np.float32)
    want = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    err = np.abs(scratch.conv2d(x, w, padding=1) - want).max()
    assert err < 1e-5, f"max abs error {err:.2e}"


def test_mixed_dtypes_promote_to_the_wider_one():
    x = np.ones((1, 1, 4, 4), np.float32)
    w = np.ones((1, 1, 3, 3), np.float64)
    assert scratch.conv2d(x, w).dtype == np.float64
    assert scratch.conv2d(x, w.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("name", list(scratch.classic_kernels()))
def test_filter2d_keeps_size_and_matches_torch(name):
    rng = np.random.default_rng(0)
    image = rng.random((17, 23))
    k = scratch.classic_kernels()[name]
    out = scratch.filter2d(image, k)
    want = F.conv2d(
        torch.tensor(image)[None, None], torch.tensor(k)[None, None], padding=k.shape[0] // 2
    )
    _close(f"filter2d[{name}]", out, want[0, 0], 1e-10, name)


def test_softmax_cross_entropy_matches_torch():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    lt = torch.tensor(logits, requires_grad=True)
    loss_t = F.cross_entropy(lt, torch.tensor(labels))
    loss_t.backward()
    loss, dlogits = scratch.softmax_cross_entropy(logits, labels)
    assert abs(loss - loss_t.item()) < 1e-12
    _close("dlogits", dlogits, lt.grad, 1e-12, "softmax")


def test_linear_and_relu_backward_match_numerical():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    dout = rng.standard_normal((4, 3))
    dx, dw, db = scratch.linear_backward(dout, x, w)
    assert (
        scratch.relative_error(
            dx, scratch.numerical_gradient(lambda v: scratch.linear(v, w, b), x, dout)
        )
        < 1e-7
    )
    assert (
        scratch.relative_error(
            dw, scratch.numerical_gradient(lambda v: scratch.linear(x, v, b), w, dout)
        )
        < 1e-7
    )
    assert (
        scratch.relative_error(
            db, scratch.numerical_gradient(lambda v: scratch.linear(x, w, v), b, dout)
        )
        < 1e-7
    )
    z = rng.standard_normal((3, 4))
    dz = scratch.relu_backward(np.ones_like(z), z)
    np.testing.assert_array_equal(dz, (z > 0).astype(float))


# ----------------------------------------------------------------------------- transposed conv


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 2), c_in=st.integers(1, 3), c_out=st.integers(1, 3),
    h=st.integers(1, 6), w=st.integers(1, 6), kh=st.integers(1, 4), kw=st.integers(1, 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]), bias=st.booleans(),
)  # fmt: skip
def test_conv_transpose2d_matches_torch(n, c_in, c_out, h, w, kh, kw, stride, data, dtype, bias):
    full = ((h - 1) * stride[0] + kh, (w - 1) * stride[1] + kw)
    padding = (
        data.draw(st.integers(0, (full[0] - 1) // 2)),
        data.draw(st.integers(0, (full[1] - 1) // 2)),
    )
    rng = np.random.default_rng(h * 100 + w)
    x = rng.standard_normal((n, c_in, h, w)).astype(dtype)
    wt = rng.standard_normal((c_in, c_out, kh, kw)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if bias else None
    ours = scratch.conv_transpose2d(x, wt, b, stride=stride, padding=padding)
    ref = F.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(wt), None if b is None else torch.from_numpy(b),
        stride=stride, padding=padding,
    ).numpy()  # fmt: skip
    case = f"x {x.shape} w {wt.shape} stride {stride} padding {padding} {dtype.__name__}"
    assert ours.shape == ref.shape, f"{case}: shape {ours.shape} vs {ref.shape}"
    assert ours.dtype == dtype, case
    err = np.abs(ours - ref).max()
    assert err < (1e-4 if dtype == np.float32 else 1e-10), f"{case}: max error {err:.3g}"
    assert ours.shape[2] == scratch.conv_transpose_output_size(h, kh, stride[0], padding[0])


def test_conv_transpose2d_is_the_input_gradient_of_conv2d():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    y = scratch.conv2d(x, w, stride=2, padding=1)  # 2 x 4 x 5 x 4
    dout = rng.standard_normal(y.shape)
    dx = scratch.conv2d_backward(dout, x, w, stride=2, padding=1)[0]
    up = scratch.conv_transpose2d(dout, w, stride=2, padding=1)  # w read as C_in=4 x C_out=3
    assert up.shape == (2, 3, 9, 7)  # (5-1)*2 - 2 + 3 = 9, (4-1)*2 - 2 + 3 = 7: one column short
    assert np.abs(up - dx[..., :7]).max() < 1e-12


@pytest.mark.parametrize(
    "args, words",
    [
        ((np.zeros((1, 2, 3, 3)), np.zeros((3, 1, 2, 2))), "C_in x C_out x KH x KW = 2 x"),
        ((np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 2, 2)), None, 1, 1), "crops the whole"),
        ((np.zeros((1, 1, 3, 3)), np.zeros((1, 2, 2, 2)), np.zeros(3)), "one per output"),
        ((np.zeros((1, 3, 3)), np.zeros((1, 1, 2, 2))), "N x C_in x H x W"),
    ],
)
def test_conv_transpose2d_says_what_is_wrong(args, words):
    with pytest.raises(ValueError, match=words):
        scratch.conv_transpose2d(*args)
