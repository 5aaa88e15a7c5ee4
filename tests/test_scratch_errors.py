"""Bad input to course_lib.scratch raises ValueError/TypeError that says what to fix."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from course_lib import scratch

X = np.zeros((2, 3, 8, 8), np.float32)
W = np.zeros((4, 3, 3, 3), np.float32)
DOUT = np.zeros((2, 4, 6, 6), np.float32)
CONV = [scratch.conv2d, scratch.conv2d_naive]
CONV_BACK = [scratch.conv2d_backward, scratch.conv2d_backward_naive]


@pytest.mark.parametrize("fn", CONV)
@pytest.mark.parametrize(
    "x, w, kwargs, error, words",
    [
        (X[0], W, {}, ValueError, "4 dimensions"),  # missing batch dimension
        (X, W[0], {}, ValueError, "F x C x KH x KW"),
        (X, np.zeros((4, 2, 3, 3), np.float32), {}, ValueError, "channel mismatch"),
        (X, np.zeros((4, 3, 9, 3), np.float32), {}, ValueError, "larger than the padded input"),
        (X, np.zeros((4, 3, 3, 3), np.float32), {"dilation": 5}, ValueError, "dilated span"),
        (X, W, {"stride": 0}, ValueError, "stride must be >= 1"),
        (X, W, {"dilation": 0}, ValueError, "dilation must be >= 1"),
        (X, W, {"padding": -1}, ValueError, "padding must be >= 0"),
        (X, W, {"stride": 1.5}, TypeError, "int or a pair"),
        (X, W, {"stride": (1, 2, 3)}, TypeError, "int or a pair"),
        (X.astype(np.int64), W, {}, TypeError, "float32 or float64"),
        (X.astype(str), W, {}, TypeError, "float32 or float64"),
        (X.tolist(), W, {}, TypeError, "NumPy array"),
        (torch.zeros(2, 3, 8, 8), W, {}, TypeError, ".numpy()"),
        (X, W, {"b": np.zeros(3, np.float32)}, ValueError, "one per filter"),
    ],
)
def test_conv2d_rejects_bad_input(fn, x, w, kwargs, error, words):
    with pytest.raises(error, match=re.escape(words)):
        fn(x, w, **kwargs)


@pytest.mark.parametrize("fn", CONV_BACK)
def test_conv2d_backward_rejects_wrong_dout_shape(fn):
    with pytest.raises(ValueError, match=r"\(2, 4, 6, 6\)"):
        fn(np.zeros((2, 4, 5, 5), np.float32), X, W)
    dx, dw, db = fn(DOUT, X, W)
    assert dx.shape == X.shape and dw.shape == W.shape and db.shape == (4,)


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(
    "x, k, s, error, words",
    [
        (X[0], 2, None, ValueError, "4 dimensions"),
        (X, 9, None, ValueError, "larger than the input"),
        (X, 0, None, ValueError, "kernel_size must be >= 1"),
        (X, 2, 0, ValueError, "stride must be >= 1"),
        (X, 2.0, None, TypeError, "int or a pair"),
        (X.astype(np.int32), 2, None, TypeError, "float32 or float64"),
    ],
)
def test_pooling_rejects_bad_input(name, x, k, s, error, words):
    with pytest.raises(error, match=words):
        getattr(scratch, name)(x, k, s)
    with pytest.raises(error, match=words):
        getattr(scratch, name + "_backward")(np.zeros((2, 3, 4, 4), np.float32), x, k, s)


@pytest.mark.parametrize("name", ["max_pool2d_backward", "avg_pool2d_backward"])
def test_pooling_backward_rejects_wrong_dout_shape(name):
    with pytest.raises(ValueError, match=r"forward output \(2, 3, 4, 4\)"):
        getattr(scratch, name)(np.zeros((2, 3, 3, 3), np.float32), X, 2)


def test_numerical_gradient_rejects_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        scratch.numerical_gradient(lambda v: v, np.arange(3), np.ones(3))
    with pytest.raises(ValueError, match="h must be > 0"):
        scratch.numerical_gradient(lambda v: v, np.ones(3), np.ones(3), h=0)
    with pytest.raises(ValueError, match="shape"):
        scratch.numerical_gradient(lambda v: v.sum(), np.ones(3), np.ones(3))


def test_filter2d_and_softmax_reject_bad_input():
    with pytest.raises(ValueError, match="odd"):
        scratch.filter2d(np.zeros((5, 5)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="H x W"):
        scratch.filter2d(np.zeros((1, 5, 5)), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        scratch.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
