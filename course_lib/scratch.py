"""Convolutional layers from scratch, in NumPy: forward, backward and gradient checks.

Layout and semantics follow ``torch.nn.functional``:

* images ``x``: ``N x C x H x W`` (batch, channels, height, width);
* filters ``w``: ``F x C x KH x KW``; bias ``b``: ``F``;
* ``conv2d`` is *cross-correlation*, as in every deep-learning library:

      y[n, f, i, j] = b[f] + sum_{c, m, k} x_pad[n, c, i*s + m*d, j*s + k*d] * w[f, c, m, k]

  with stride ``s``, dilation ``d`` and ``x_pad`` the input zero-padded by ``p`` on each side;
* output size, per spatial axis: ``O = floor((H + 2p - d*(K - 1) - 1) / s) + 1``.

Each layer has a loop version (``*_naive``) that reads like the formula, and a vectorised one
that is fast; the tests check both against PyTorch and against each other. Every function
accepts ``float32`` and ``float64`` arrays and returns the wider of its inputs' dtypes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Pair = int | tuple[int, int]

# ----------------------------------------------------------------------------- input checks


def _pair(value: Pair, name: str, minimum: int) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(2, 1) -> (2, 1)``; checks ints >= ``minimum``."""
    items = value if isinstance(value, tuple | list) else (value, value)
    if len(items) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items
    ):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(items) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(items[0]), int(items[1])


def _array(a: object, name: str, ndim: int, layout: str) -> np.ndarray:
    """Check that ``a`` is a float32/float64 NumPy array with ``ndim`` dimensions."""
    if not isinstance(a, np.ndarray):
        hint = " (for a torch tensor use t.detach().cpu().numpy())" if hasattr(a, "detach") else ""
        raise TypeError(f"{name} must be a NumPy array {layout}, got {type(a).__name__}{hint}")
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {a.dtype} "
            f"(convert with {name}.astype(np.float32))"
        )
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {layout}, got shape {a.shape}")
    return a


def _dtype(*arrays: np.ndarray | None) -> np.dtype:
    return np.result_type(*[a.dtype for a in arrays if a is not None])


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1):
    """``floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _check_conv(x, w, b, stride, padding, dilation):
    """Validate conv2d arguments; return the arrays, the pairs and the output size."""
    x = _array(x, "x", 4, "of shape N x C x H x W")
    w = _array(w, "w", 4, "of shape F x C x KH x KW")
    if b is not None:
        b = _array(b, "b", 1, "of shape F")
        if b.shape[0] != w.shape[0]:
            raise ValueError(f"b must have shape ({w.shape[0]},), one per filter, got {b.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"channel mismatch: x has C={x.shape[1]} channels (shape {x.shape}) but w expects "
            f"C={w.shape[1]} (shape {w.shape}); w must be F x {x.shape[1]} x KH x KW"
        )
    s, p, d = (
        _pair(stride, "stride", 1),
        _pair(padding, "padding", 0),
        _pair(dilation, "dilation", 1),
    )
    out = []
    for axis, size, k in (("height", x.shape[2], w.shape[2]), ("width", x.shape[3], w.shape[3])):
        i = 0 if axis == "height" else 1
        span = d[i] * (k - 1) + 1
        if span > size + 2 * p[i]:
            raise ValueError(
                f"kernel {axis} {k} (dilated span {span}) is larger than the padded input "
                f"{axis} {size} + 2*{p[i]} = {size + 2 * p[i]}: "
                "use a smaller kernel or more padding"
            )
        out.append(conv_output_size(size, k, s[i], p[i], d[i]))
    return x, w, b, s, p, d, tuple(out)


def _pad(x: np.ndarray, p: tuple[int, int]) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))) if any(p) else x


def _windows(xp: np.ndarray, k, s, d, out) -> np.ndarray:
    """View ``N x C x OH x OW x KH x KW`` of the receptive fields (no copy)."""
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    win = sliding_window_view(xp, span, axis=(2, 3))
    return win[
        :, :, : s[0] * (out[0] - 1) + 1 : s[0], : s[1] * (out[1] - 1) + 1 : s[1], :: d[0], :: d[1]
    ]


# ----------------------------------------------------------------------------- convolution


def conv2d_naive(x, w, b=None, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1):
    """2-D cross-correlation with explicit loops over ``n, f, i, j`` (slow; for teaching).

    Args:
        x: input ``N x C x H x W``.  w: filters ``F x C x KH x KW``.  b: bias ``F`` or None.
        stride, padding, dilation: an int or a pair ``(along height, along width)``.

    Returns:
        ``N x F x OH x OW``, ``OH = floor((H + 2p - d(KH-1) - 1)/s) + 1`` (likewise ``OW``).
    """
    x, w, b, s, p, d, (oh, ow) = _check_conv(x, w, b, stride, padding, dilation)
    xp = _pad(x, p)
    n_img, n_filt, kh, kw = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
    y = np.zeros((n_img, n_filt, oh, ow), dtype=_dtype(x, w, b))
    for n in range(n_img):
        for f in range(n_filt):
            for i in range(oh):
                for j in range(ow):
                    rows = slice(i * s[0], i * s[0] + d[0] * (kh - 1) + 1, d[0])
                    cols = slice(j * s[1], j * s[1] + d[1] * (kw - 1) + 1, d[1])
                    y[n, f, i, j] = np.sum(xp[n, :, rows, cols] * w[f])  # C x KH x KW
            if b is not None:
                y[n, f] += b[f]
    return y


def conv2d(x, w, b=None, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1):
    """Vectorised 2-D cross-correlation; same arguments and result as ``conv2d_naive``.

    im2col with one trick: flatten each zero-padded image into one long row of length
    ``Hp*Wp``. Kernel tap ``(m, k)`` then reads the row shifted by ``m*d*Wp + k*d``, so each row
    of the im2col matrix is a contiguous slice (a fast copy). One matrix product per image,

        (F x KH*KW*C filters) @ (KH*KW*C x OH'*Wp columns) -> F x OH'*Wp,

    computes the output at every column of the padded width; cropping (and striding) keeps
    the ``OH x OW`` valid ones. Images go through in chunks of 8, so the buffers stay in the
    CPU cache and are reused: on 2 cores this is about 2x faster than building the whole
    im2col matrix or contracting sliding windows with ``np.einsum``.
    """
    x, w, b, s, p, d, (oh, ow) = _check_conv(x, w, b, stride, padding, dilation)
    dtype = _dtype(x, w, b)
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    (n_img, c, h, wd), (n_filt, _, kh, kw) = x.shape, w.shape
    hp, wp = h + 2 * p[0], wd + 2 * p[1]
    rows = (oh - 1) * s[0] + 1  # padded rows that outputs start on (stride 1, then subsample)
    length = rows * wp  # positions computed per image, valid or not
    offsets = [m * d[0] * wp + k * d[1] for m in range(kh) for k in range(kw)]
    filters = w.transpose(0, 2, 3, 1).reshape(n_filt, kh * kw * c)  # columns ordered (tap, c)
    chunk = min(8, n_img)
    flat = np.zeros((chunk, c, hp * wp + offsets[-1]), dtype)  # zero border stays zero
    cols = np.empty((chunk, kh * kw, c, length), dtype)
    y = np.empty((chunk, n_filt, length), dtype)
    out = np.empty((n_img, n_filt, oh, ow), dtype)
    for n0 in range(0, n_img, chunk):
        n = min(chunk, n_img - n0)
        image = flat[:n, :, : hp * wp].reshape(n, c, hp, wp)
        image[:, :, p[0] : p[0] + h, p[1] : p[1] + wd] = x[n0 : n0 + n]
        for tap, offset in enumerate(offsets):
            cols[:n, tap] = flat[:n, :, offset : offset + length]
        np.matmul(filters, cols[:n].reshape(n, kh * kw * c, length), out=y[:n])
        valid = y[:n].reshape(n, n_filt, rows, wp)[:, :, :: s[0], : (ow - 1) * s[1] + 1 : s[1]]
        out[n0 : n0 + n] = valid
    if b is not None:
        out += b.astype(dtype).reshape(1, -1, 1, 1)
    return out


def conv2d_backward_naive(dout, x, w, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1):
    """Gradients of ``conv2d`` with loops: each output position sends ``dout[n, f, i, j]``
    back to the input window it read (times ``w[f]``) and to the filter (times that window).

    Args:
        dout: upstream gradient ``N x F x OH x OW``.  x, w, stride, padding, dilation: as in
        the forward pass.

    Returns:
        ``(dx, dw, db)`` with the shapes of ``x``, ``w`` and ``(F,)``.
    """
    x, w, _, s, p, d, out = _check_conv(x, w, None, stride, padding, dilation)
    dout = _check_dout(dout, (x.shape[0], w.shape[0], *out))
    dtype = _dtype(dout, x, w)
    xp = _pad(x, p)
    dxp, dw = np.zeros(xp.shape, dtype), np.zeros(w.shape, dtype)
    kh, kw = w.shape[2:]
    for n in range(x.shape[0]):
        for f in range(w.shape[0]):
            for i in range(out[0]):
                for j in range(out[1]):
                    rows = slice(i * s[0], i * s[0] + d[0] * (kh - 1) + 1, d[0])
                    cols = slice(j * s[1], j * s[1] + d[1] * (kw - 1) + 1, d[1])
                    dxp[n, :, rows, cols] += dout[n, f, i, j] * w[f]
                    dw[f] += dout[n, f, i, j] * xp[n, :, rows, cols]
    dx = dxp[:, :, p[0] : p[0] + x.shape[2], p[1] : p[1] + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3)).astype(dtype)


def conv2d_backward(dout, x, w, stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1):
    """Vectorised gradients of ``conv2d``; same arguments and results as the naive version.

        db[f]          = sum_{n,i,j} dout[n, f, i, j]
        dw[f, c, m, k] = sum_{n,i,j} dout[n, f, i, j] * x_pad[n, c, i*s + m*d, j*s + k*d]
        dx_pad[n, c, i*s + m*d, j*s + k*d] += sum_f dout[n, f, i, j] * w[f, c, m, k]

    ``dw`` contracts ``dout`` with the sliding windows; ``dx`` loops over the ``KH*KW`` kernel
    offsets and scatters a strided slice each time (overlapping windows add up).
    """
    x, w, _, s, p, d, out = _check_conv(x, w, None, stride, padding, dilation)
    dout = _check_dout(dout, (x.shape[0], w.shape[0], *out))
    dtype = _dtype(dout, x, w)
    xp = _pad(x, p)
    win = _windows(xp, w.shape[2:], s, d, out)  # N x C x OH x OW x KH x KW
    dw = np.einsum("nfhw,nchwij->fcij", dout, win, optimize="greedy").astype(dtype, copy=False)
    dxp = np.zeros(xp.shape, dtype)
    for m in range(w.shape[2]):
        for k in range(w.shape[3]):
            rows = slice(m * d[0], m * d[0] + s[0] * (out[0] - 1) + 1, s[0])
            cols = slice(k * d[1], k * d[1] + s[1] * (out[1] - 1) + 1, s[1])
            dxp[:, :, rows, cols] += np.einsum("nfhw,fc->nchw", dout, w[:, :, m, k])
    dx = dxp[:, :, p[0] : p[0] + x.shape[2], p[1] : p[1] + x.shape[3]]
    return dx, dw, dout.sum(axis=(0, 2, 3)).astype(dtype)


# ----------------------------------------------------------------------------- transposed conv


def conv_transpose_output_size(
    size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0
) -> int:
    """Output size of ``nn.ConvTranspose2d`` along one axis (dilation 1).

    A transposed convolution spreads each input pixel over a ``kernel``-wide window placed every
    ``stride`` pixels, then crops ``padding`` from each side:
    """
    limits = [("size", size, 1), ("kernel", kernel, 1), ("stride", stride, 1),
              ("padding", padding, 0), ("output_padding", output_padding, 0)]  # fmt: skip
    for name, value, low in limits:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if output_padding >= stride:
        raise ValueError(f"output_padding must be smaller than stride, got {output_padding}")
    # out = (in - 1) * stride - 2 * padding + kernel + output_padding
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def conv_transpose2d(x, w, b=None, stride: Pair = 1, padding: Pair = 0):
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d`` (dilation 1,
    output_padding 0, one group): each input pixel spreads a copy of the kernel, scaled by its
    value, onto the output; copies sit ``stride`` pixels apart and add up where they overlap;
    then ``padding`` pixels are cropped from each border.

        y_full[n, o, i*s + m, j*s + k] += sum_c x[n, c, i, j] * w[c, o, m, k]
        y = y_full[:, :, p : -p, p : -p] + b[o]

    It is also the gradient of ``conv2d`` with respect to its input (``conv2d_backward``'s
    ``dx``), with the same ``w``, stride and padding.

    Args:
        x: ``N x C_in x H x W``.
        w: ``C_in x C_out x KH x KW`` (PyTorch's layout for transposed convolutions: input
            channels first).  b: ``C_out`` (optional).

    Returns:
        ``N x C_out x OH x OW`` with ``OH = (H - 1)*s - 2p + KH`` (likewise ``OW``).
    """
    x = _array(x, "x", 4, "of shape N x C_in x H x W")
    w = _array(w, "w", 4, "of shape C_in x C_out x KH x KW")
    if x.shape[1] != w.shape[0]:
        raise ValueError(
            f"channel mismatch: x has C_in={x.shape[1]} channels (shape {x.shape}) but w has "
            f"{w.shape[0]} (shape {w.shape}); a transposed convolution's w is "
            f"C_in x C_out x KH x KW = {x.shape[1]} x C_out x KH x KW"
        )
    if b is not None:
        b = _array(b, "b", 1, "of shape C_out")
        if b.shape[0] != w.shape[1]:
            raise ValueError(f"b must have shape ({w.shape[1]},), one per output channel")
    s, p = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    (n, _, h, wd), (_, c_out, kh, kw) = x.shape, w.shape
    full = ((h - 1) * s[0] + kh, (wd - 1) * s[1] + kw)  # before cropping
    if min(full[0] - 2 * p[0], full[1] - 2 * p[1]) < 1:
        raise ValueError(f"padding {p} crops the whole output of size {full}")
    y = np.zeros((n, c_out, *full), _dtype(x, w, b))
    for m in range(kh):
        for k in range(kw):
            # the tap (m, k) of every copy lands on rows i*s + m and columns j*s + k
            rows = slice(m, m + s[0] * (h - 1) + 1, s[0])
            cols = slice(k, k + s[1] * (wd - 1) + 1, s[1])
            y[:, :, rows, cols] += np.einsum("nchw,co->nohw", x, w[:, :, m, k])
    y = y[:, :, p[0] : full[0] - p[0], p[1] : full[1] - p[1]]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _check_dout(dout, expected: tuple[int, ...]) -> np.ndarray:
    dout = _array(dout, "dout", 4, "of the layer's output shape")
    if dout.shape != tuple(expected):
        raise ValueError(
            f"dout must have the shape of the forward output {tuple(expected)}, got {dout.shape}"
        )
    return dout


# ----------------------------------------------------------------------------- pooling


def _check_pool(x, kernel_size, stride):
    x = _array(x, "x", 4, "of shape N x C x H x W")
    k = _pair(kernel_size, "kernel_size", 1)
    s = k if stride is None else _pair(stride, "stride", 1)
    for i, axis in enumerate(("height", "width")):
        if k[i] > x.shape[2 + i]:
            raise ValueError(
                f"kernel_size {k} is larger than the input {axis} {x.shape[2 + i]} "
                f"(x has shape {x.shape})"
            )
    out = tuple(conv_output_size(x.shape[2 + i], k[i], s[i]) for i in range(2))
    return x, k, s, out


def max_pool2d(x, kernel_size: Pair, stride: Pair | None = None):
    """Max pooling: ``y[n, c, i, j] = max_{m<KH, k<KW} x[n, c, i*s + m, j*s + k]``.

    Args:
        x: ``N x C x H x W``.  kernel_size: an int or a pair.  stride: defaults to kernel_size.

    Returns:
        ``N x C x OH x OW`` with ``OH = floor((H - KH) / s) + 1`` (no padding).
    """
    x, k, s, out = _check_pool(x, kernel_size, stride)
    return _windows(x, k, s, (1, 1), out).max(axis=(4, 5))


def avg_pool2d(x, kernel_size: Pair, stride: Pair | None = None):
    """Average pooling: ``y[n, c, i, j] = mean_{m<KH, k<KW} x[n, c, i*s + m, j*s + k]``.

    Same arguments and output shape as ``max_pool2d``.
    """
    x, k, s, out = _check_pool(x, kernel_size, stride)
    return _windows(x, k, s, (1, 1), out).mean(axis=(4, 5))


def max_pool2d_backward(dout, x, kernel_size: Pair, stride: Pair | None = None):
    """Gradient of ``max_pool2d``: each ``dout[n, c, i, j]`` goes only to the position of the
    maximum in its window (the first one on ties); overlapping windows add up.

    Returns:
        ``dx`` with the shape of ``x``.
    """
    x, k, s, out = _check_pool(x, kernel_size, stride)
    dout = _check_dout(dout, (*x.shape[:2], *out))
    win = _windows(x, k, s, (1, 1), out).reshape(*x.shape[:2], *out, k[0] * k[1])
    arg = win.argmax(axis=-1)  # N x C x OH x OW, index inside the window
    rows = np.arange(out[0])[:, None] * s[0] + arg // k[1]  # absolute row of each maximum
    cols = np.arange(out[1])[None, :] * s[1] + arg % k[1]
    plane = x.shape[2] * x.shape[3]
    flat = (
        np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2] + (1, 1)) * plane
        + rows * x.shape[3]
        + cols
    )  # index into x.ravel()
    dx = np.bincount(flat.ravel(), weights=dout.ravel(), minlength=x.size)
    return dx.reshape(x.shape).astype(_dtype(dout, x))


def avg_pool2d_backward(dout, x, kernel_size: Pair, stride: Pair | None = None):
    """Gradient of ``avg_pool2d``: each ``dout[n, c, i, j]`` is shared equally, ``1/(KH*KW)``
    each, by the positions of its window; overlapping windows add up.

    Returns:
        ``dx`` with the shape of ``x``.
    """
    x, k, s, out = _check_pool(x, kernel_size, stride)
    dout = _check_dout(dout, (*x.shape[:2], *out))
    dx = np.zeros(x.shape, _dtype(dout, x))
    share = dout / (k[0] * k[1])
    for m in range(k[0]):
        for j in range(k[1]):
            dx[
                :, :, m : m + s[0] * (out[0] - 1) + 1 : s[0], j : j + s[1] * (out[1] - 1) + 1 : s[1]
            ] += share
    return dx


# ----------------------------------------------------------------------------- gradient checks


def numerical_gradient(f: Callable[[np.ndarray], np.ndarray], x, dout, h: float = 1e-5):
    """Central-difference estimate of ``d(sum(f(x) * dout)) / dx``.

        grad[i] ~= sum((f(x + h e_i) - f(x - h e_i)) * dout) / (2h)

    ``f`` is called on a float64 copy of ``x``, one element nudged at a time, so ``x`` itself is
    never changed. Use float64 and a small ``x`` (each element costs two calls of ``f``).

    Args:
        f: function of one array returning an array of the shape of ``dout``.
        x: the point, any shape.  dout: upstream gradient.  h: step.

    Returns:
        float64 array of the shape of ``x``.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating-point NumPy array, got {type(x).__name__}")
    if not isinstance(dout, np.ndarray):
        raise TypeError(f"dout must be a NumPy array, got {type(dout).__name__}")
    if not h > 0:
        raise ValueError(f"h must be > 0, got {h}")
    xx = x.astype(np.float64)  # a copy
    grad = np.zeros_like(xx)
    for idx in np.ndindex(xx.shape):
        old = xx[idx]
        xx[idx] = old + h
        plus = np.asarray(f(xx), dtype=np.float64)
        xx[idx] = old - h
        minus = np.asarray(f(xx), dtype=np.float64)
        xx[idx] = old
        if plus.shape != dout.shape:
            raise ValueError(f"f(x) has shape {plus.shape} but dout has shape {dout.shape}")
        grad[idx] = np.sum((plus - minus) * dout) / (2 * h)
    return grad


def relative_error(a, b) -> float:
    """``max |a - b| / max(|a| + |b|, 1e-12)`` elementwise, the usual gradient-check score:
    about 1e-7 or less means the two agree in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12), initial=0.0))


# ----------------------------------------------------------------------------- small friends


def relu(x):
    """``max(x, 0)``, any shape."""
    return np.maximum(x, 0)


def relu_backward(dout, x):
    """Gradient of ``relu``: ``dout`` where ``x > 0``, else 0."""
    return dout * (x > 0)


def linear(x, w, b):
    """Fully connected layer: ``x (N x D) @ w (D x M) + b (M)`` -> ``N x M``."""
    return x @ w + b


def linear_backward(dout, x, w):
    """Gradients of ``linear``: ``dx = dout @ w.T`` (N x D), ``dw = x.T @ dout`` (D x M),
    ``db = sum_n dout`` (M)."""
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) and its gradient with respect to the logits.

        loss = -1/N sum_n log softmax(logits_n)[labels_n]
        dlogits = (softmax(logits) - onehot(labels)) / N

    Args:
        logits: ``N x K``.  labels: ``N`` ints in ``[0, K)``.

    Returns:
        ``(loss, dlogits)``: a float and an ``N x K`` array.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(
            f"expected logits N x K and labels N, got {logits.shape} and {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(
            f"labels must be in [0, {logits.shape[1]}), got {labels.min()}..{labels.max()}"
        )
    shifted = logits - logits.max(axis=1, keepdims=True)  # for numerical stability
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -log_probs[np.arange(n), labels].mean()
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), labels] -= 1
    return float(loss), dlogits / n


# ----------------------------------------------------------------------------- classic filters


def classic_kernels() -> dict[str, np.ndarray]:
    """Hand-made 2-D filters (float64), by name: what convolution did before it was learned.

    ``identity``, ``box_blur`` (3x3 mean), ``gaussian_blur`` (5x5, sigma 1), ``sharpen``
    (identity minus the Laplacian), ``sobel_x`` (responds to vertical edges, d/dx),
    ``sobel_y`` (horizontal edges, d/dy), ``laplacian`` (second derivative, 4-neighbour),
    ``emboss``.
    """
    g = np.exp(-0.5 * np.arange(-2, 3) ** 2)
    g2 = np.outer(g, g)
    return {
        "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], float),
        "box_blur": np.full((3, 3), 1 / 9),
        "gaussian_blur": g2 / g2.sum(),
        "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], float),
        "sobel_x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float),
        "sobel_y": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], float),
        "laplacian": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float),
        "emboss": np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], float),
    }


def filter2d(image, kernel):
    """Cross-correlate one grey image ``H x W`` with one odd-sized kernel ``KH x KW``,
    zero-padded so that the result is ``H x W`` too ("same" size)."""
    image = _array(image, "image", 2, "of shape H x W (one grey image)")
    kernel = _array(np.asarray(kernel, dtype=image.dtype), "kernel", 2, "of shape KH x KW")
    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel sides must be odd for a same-size result, got {kernel.shape}")
    padding = (kernel.shape[0] // 2, kernel.shape[1] // 2)
    return conv2d(image[None, None], kernel[None, None], padding=padding)[0, 0]
