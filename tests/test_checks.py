"""course_lib.checks: right answers pass with one line; classic mistakes are named in words a
beginner understands, with the case, the shapes and the largest error."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from exercise_tools import ASSIGNMENTS, WRONG, cell_meta, runs_in_process, source_nb, task_ids

from course_lib import checks, scratch


def _namespace(assignment: str, replace: dict[str, str] | None = None) -> dict:
    """Run a source notebook's set-up and solution cells (or replacements) in a fresh namespace."""
    ns: dict = {}
    for cell in source_nb(assignment).cells:
        grade_id = cell_meta(cell).get("grade_id")
        if cell.cell_type == "code" and (grade_id == "setup" or cell_meta(cell).get("solution")):
            exec((replace or {}).get(grade_id, cell.source), ns)
    return ns


# Every exercise in exercises/source/, so that a new one is picked up (each task needs its check).
TASKS = {a: task_ids(source_nb(a)) for a in ASSIGNMENTS}


def test_the_exercises_are_found():
    assert {"01_convolution", "02_pooling_backprop", "03_cnn_classifier"} <= set(TASKS)
    assert TASKS["03_cnn_classifier"] == ["cross_entropy", "training_step"]


def _failure(check, fn) -> str:
    with pytest.raises(checks.CheckFailed) as info:
        check(fn)
    return str(info.value)


# ----------------------------------------------------------------------------- right answers


@pytest.mark.parametrize(
    "assignment, task", [(a, t) for a, tasks in TASKS.items() for t in tasks], ids=str
)
def test_the_solutions_of_the_notebooks_pass_with_one_short_line(assignment, task, capsys):
    fn = _namespace(assignment)[task]
    start = time.perf_counter()
    getattr(checks, f"check_{task}")(fn)
    assert time.perf_counter() - start < 5, "a check must answer at once"
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"✓ {task}: all ") and out.endswith("cases match the reference.")
    assert "\n" not in out


@pytest.mark.parametrize(
    "check, reference",
    [
        (checks.check_conv2d, lambda x, w, b, s, p: scratch.conv2d(x, w, b, stride=s, padding=p)),
        (checks.check_sobel_edges, checks._sobel_reference),
        (checks.check_max_pool2d, scratch.max_pool2d),
        (checks.check_max_pool2d_backward, scratch.max_pool2d_backward),
        (
            checks.check_conv2d_backward_weights,
            lambda d, x, w, s, p: scratch.conv2d_backward(d, x, w, stride=s, padding=p)[1],
        ),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_the_reference_itself_passes_also_in_float32_and_other_seeds(check, reference):
    def float32(*args):
        args = [a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args]
        return reference(*args).astype(np.float32)

    for seed in (0, 1, 2):
        check(reference, seed=seed)
    check(float32)


# ----------------------------------------------------------------------------- graded wrong answers


@pytest.mark.parametrize("student", [s for s, w in WRONG.items() if runs_in_process(w)], ids=str)
def test_each_wrong_answer_that_ci_grades_gets_its_hint(student):
    wrong = WRONG[student]
    task = wrong["cell"]
    fn = _namespace(wrong["assignment"], {task: wrong["code"]})[task]
    msg = _failure(getattr(checks, f"check_{task}"), fn)
    assert wrong["hint"] in msg, msg
    assert msg.startswith(f"{task} is wrong on case "), msg
    assert "Hint: " in msg
    # the case's shapes and the largest error, or which switched-off function it called
    assert "shape" in msg or "which is switched off in this check" in msg, msg


# ----------------------------------------------------------------------------- classic mistakes


def _conv(x, w, b, s, p):
    return scratch.conv2d(x, w, b, stride=s, padding=p)


def _nan_corner(x, w, b, s, p):
    y = _conv(x, w, b, s, p)
    y[0, 0, -1, -1] = np.nan  # as if started from np.empty and missed the last window
    return y


def _raise_index_error(x, w, b, s, p):
    return x[10, 10, 10, 10]


def _not_written(*args):
    raise NotImplementedError()


def _per_input_channel(x, w, b, s, p):
    """One output channel per input channel c (x[:, c] with w[0, c]), not one per filter."""
    b0 = None if b is None else b[:1]
    return np.concatenate(
        [_conv(x[:, c : c + 1], w[:1, c : c + 1], b0, s, p) for c in range(x.shape[1])], axis=1
    )


CONV_MISTAKES = [
    (lambda x, w, b, s, p: _conv(x, w[:, :, ::-1, ::-1].copy(), b, s, p), "flipped the kernel"),
    (lambda x, w, b, s, p: _conv(x, w, b, s, p)[:, :, :-1, :-1], "off-by-one output size"),
    (
        lambda x, w, b, s, p: np.pad(_conv(x, w, b, s, p), ((0, 0), (0, 0), (0, 1), (0, 1))),
        "off-by-one output size",
    ),
    (lambda x, w, b, s, p: _conv(x, w, b, 1, p), "size for stride 1"),
    (lambda x, w, b, s, p: _conv(x, w, b, s, 0), "pad x with"),
    (lambda x, w, b, s, p: _conv(x, w, None, s, p), "forgot the bias"),
    (
        lambda x, w, b, s, p: _conv(x, w, b, s, p) + (x.shape[1] - 1) * b[None, :, None, None],
        "once per input channel",
    ),
    (lambda x, w, b, s, p: _conv(x, w.swapaxes(2, 3).copy(), b, s, p), "axes are swapped"),
    (
        lambda x, w, b, s, p: _conv(x, w, b, 1, p)[:, :, : _conv(x, w, b, s, p).shape[2]][
            ..., : _conv(x, w, b, s, p).shape[3]
        ],
        "i·stride",
    ),
    (lambda x, w, b, s, p: _conv(x, w, b if b is not None else np.ones(len(w)), s, p), "b is None"),
    (lambda x, w, b, s, p: _conv(x, w, b, s, p)[0], "4-D array"),
    (_per_input_channel, "one output channel per filter"),
    (lambda x, w, b, s, p: None, "forget the `return`"),
    (lambda x, w, b, s, p: torch.from_numpy(_conv(x, w, b, s, p)), "torch tensor"),
    (lambda x, w, b, s, p: (_conv(x, w, b, s, p), None), "tuple"),
    (_nan_corner, "np.empty"),
    (_raise_index_error, "raised IndexError"),
    (_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", CONV_MISTAKES, ids=[h for _, h in CONV_MISTAKES])
def test_check_conv2d_names_the_mistake(fn, hint):
    msg = _failure(checks.check_conv2d, fn)
    assert hint in msg, msg
    if hint not in ("not written yet", "raised IndexError"):
        assert "case " in msg and "x of shape" in msg and "stride=" in msg, msg


def test_check_conv2d_reports_shapes_and_the_largest_error():
    msg = _failure(checks.check_conv2d, CONV_MISTAKES[0][0])
    assert "case 1 of 8" in msg and "x of shape (1, 1, 5, 5), w of shape (1, 1, 3, 3)" in msg
    assert "The shape (1, 1, 3, 3) is right, but " in msg and "Largest error " in msg
    assert "at index [" in msg and "expected " in msg and ", got " in msg
    assert "cases that pass: 2" in msg  # a 1x1 kernel is the same flipped
    msg = _failure(checks.check_conv2d, CONV_MISTAKES[1][0])
    assert "Expected an array of shape (1, 1, 3, 3), got shape (1, 1, 2, 2)" in msg
    assert "O = " not in msg and "OH = floor((H + 2p − KH)/s) + 1" in msg


def test_a_learner_error_keeps_its_traceback():
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_conv2d(_raise_index_error)
    assert isinstance(info.value.__cause__, IndexError)
    with pytest.raises(checks.CheckFailed) as info:
        checks.check_conv2d(_not_written)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_a_check_needs_the_function_itself():
    msg = _failure(checks.check_conv2d, np.zeros(3))
    assert "check_conv2d(conv2d)" in msg


def _sobel_parts(image, kx, ky=None):
    ky = kx.T if ky is None else ky
    return scratch.filter2d(image, kx), scratch.filter2d(image, ky)


SOBEL_X = scratch.classic_kernels()["sobel_x"]
PREWITT_X = np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], float)


def _sobel_reflect(image):
    padded = np.pad(image, 1, mode="edge")[None, None]
    gx = scratch.conv2d(padded, SOBEL_X[None, None])[0, 0]
    gy = scratch.conv2d(padded, SOBEL_X.T[None, None].copy())[0, 0]
    return np.hypot(gx, gy)


SOBEL_MISTAKES = [
    (lambda im: np.square(_sobel_parts(im, SOBEL_X)).sum(axis=0), "forgot the square root"),
    (lambda im: np.abs(_sobel_parts(im, SOBEL_X)).sum(axis=0), "|gx| + |gy|"),
    (lambda im: np.abs(_sobel_parts(im, SOBEL_X)[0]), "only the horizontal derivative gx"),
    (lambda im: np.abs(_sobel_parts(im, SOBEL_X)[1]), "only the vertical derivative gy"),
    (lambda im: checks._sobel_reference(im)[1:-1, 1:-1], "2 pixels smaller"),
    (lambda im: checks._sobel_reference(im) / checks._sobel_reference(im).max(), "rescale"),
    (lambda im: np.hypot(*_sobel_parts(im, PREWITT_X)), "Prewitt"),
    (_sobel_reflect, "only the border pixels are wrong"),
    (lambda im: checks._sobel_reference(im)[None], "one grey H × W array"),
]


@pytest.mark.parametrize("fn, hint", SOBEL_MISTAKES, ids=[h for _, h in SOBEL_MISTAKES])
def test_check_sobel_edges_names_the_mistake(fn, hint):
    msg = _failure(checks.check_sobel_edges, fn)
    assert hint in msg, msg
    assert "case 1 of 4: a random 6×6 image" in msg, msg


def _pool_loop(x, k, s=None, reduce=np.max, ceil=False, size=None):
    """Pooling written with loops, optionally keeping the last incomplete windows, or with
    windows of ``size`` (``k`` when right)."""
    s = k if s is None else s
    size = k if size is None else size
    n, c, h, w = x.shape
    if ceil:
        oh, ow = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    else:
        oh, ow = (h - k) // s + 1, (w - k) // s + 1
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = x[:, :, i * s : i * s + size, j * s : j * s + size]
            y[:, :, i, j] = reduce(win, axis=(2, 3))
    return y


MAX_POOL_MISTAKES = [
    (lambda x, k, s=None: scratch.avg_pool2d(x, k, s), "average pooling"),
    (lambda x, k, s=None: _pool_loop(x, k, s, np.min), "smallest value"),
    (lambda x, k, s=None: _pool_loop(x, k, s, np.sum), "you summed each window"),
    (lambda x, k, s=None: _pool_loop(np.abs(x), k, s), "largest absolute value"),
    (lambda x, k, s=None: scratch.max_pool2d(x, k, 1 if s is None else s), "your windows overlap"),
    (lambda x, k, s=None: _pool_loop(x, k, s, ceil=True), "incomplete windows"),
    (lambda x, k, s=None: scratch.max_pool2d(x, k, s).max(axis=1), "N × C × OH × OW"),
    (lambda x, k, s=None: scratch.max_pool2d(x, k, k), "you ignored the stride"),
    (lambda x, k, s=None: _pool_loop(x, k, s, size=s), "stride differs from the kernel size"),
]


@pytest.mark.parametrize("fn, hint", MAX_POOL_MISTAKES, ids=[h for _, h in MAX_POOL_MISTAKES])
def test_check_max_pool2d_names_the_mistake(fn, hint):
    msg = _failure(checks.check_max_pool2d, fn)
    assert hint in msg, msg
    assert "kernel_size=" in msg and "x of shape" in msg, msg


def _backward_loop(dout, x, k, s=None, *, share="max", accumulate=True, send="dout"):
    s = k if s is None else s
    dx = np.zeros_like(x)
    n, c, oh, ow = dout.shape
    for a in range(n):
        for b in range(c):
            for i in range(oh):
                for j in range(ow):
                    rows, cols = slice(i * s, i * s + k), slice(j * s, j * s + k)
                    win = x[a, b, rows, cols]
                    if share == "all":
                        dx[a, b, rows, cols] += dout[a, b, i, j]
                        continue
                    m, q = np.unravel_index(np.argmax(win), win.shape)
                    value = {"dout": dout[a, b, i, j], "one": 1.0, "x": win[m, q]}[send]
                    if accumulate:
                        dx[a, b, i * s + m, j * s + q] += value
                    else:
                        dx[a, b, i * s + m, j * s + q] = value
    return dx


def _garbage_outside(dout, x, k, s=None):
    """Right where windows reach, 1 (not 0) where none does."""
    step = k if s is None else s
    dx = scratch.max_pool2d_backward(dout, x, k, s) + 1.0
    oh, ow = dout.shape[2:]
    dx[:, :, : (oh - 1) * step + k, : (ow - 1) * step + k] -= 1.0
    return dx


BACKWARD_MISTAKES = [
    (lambda d, x, k, s=None: _backward_loop(d, x, k, s, share="all"), "every position"),
    (lambda d, x, k, s=None: scratch.avg_pool2d_backward(d, x, k, s), "backward pass of *average*"),
    (lambda d, x, k, s=None: _backward_loop(d, x, k, s, accumulate=False), "don't overwrite"),
    (lambda d, x, k, s=None: _backward_loop(d, x, k, s, send="one"), "forgot to multiply"),
    (lambda d, x, k, s=None: _backward_loop(d, x, k, s, send="x"), "you sent x"),
    (lambda d, x, k, s=None: d, "shape of dout"),
    (_garbage_outside, "no window covers"),
]


@pytest.mark.parametrize("fn, hint", BACKWARD_MISTAKES, ids=[h for _, h in BACKWARD_MISTAKES])
def test_check_max_pool2d_backward_names_the_mistake(fn, hint):
    msg = _failure(checks.check_max_pool2d_backward, fn)
    assert hint in msg, msg
    assert "dout of shape" in msg, msg


def _dw(dout, x, w, s, p):
    return scratch.conv2d_backward(dout, x, w, stride=s, padding=p)[1]


def _dw_loop(dout, x, w, s, p, *, start=None):
    """dw with loops; ``start`` = the step between windows (s when right)."""
    start = s if start is None else start
    f, c, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dw = np.zeros(w.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            win = xp[:, :, i * start : i * start + kh, j * start : j * start + kw]
            dw += np.tensordot(dout[:, :, i, j], win, axes=([0], [0]))
    return dw


def _dw_per_image(dout, x, w, s, p):
    return np.stack([_dw(dout[n, None], x[n, None], w, s, p) for n in range(len(x))])


DW_MISTAKES = [
    (
        lambda d, x, w, s, p: _dw(d, np.repeat(x.sum(1, keepdims=True), x.shape[1], 1), w, s, p),
        "summed over the channels c",
    ),
    (
        lambda d, x, w, s, p: np.repeat(_dw(d, x, w, s, p).sum(0, keepdims=True), w.shape[0], 0),
        "summed over the filters f",
    ),
    (lambda d, x, w, s, p: _dw(d[:1], x[:1], w, s, p), "only the first image"),
    (lambda d, x, w, s, p: _dw(d, x, w, s, p) / x.shape[0], "averaged over the batch"),
    (lambda d, x, w, s, p: _dw(d, x, w, s, p)[:, :, ::-1, ::-1], "dw is flipped"),
    (lambda d, x, w, s, p: _dw(d, x, w, s, p).swapaxes(2, 3), "axes are swapped"),
    (
        lambda d, x, w, s, p: scratch.conv2d_backward(d, x, w, stride=s, padding=p)[0],
        "that is dx",
    ),
    (_dw_per_image, "one dw per image"),
    (lambda d, x, w, s, p: _dw_loop(d, x, w, s, p, start=1), "only fails with stride > 1"),
]


@pytest.mark.parametrize("fn, hint", DW_MISTAKES, ids=[h for _, h in DW_MISTAKES])
def test_check_conv2d_backward_weights_names_the_mistake(fn, hint):
    msg = _failure(checks.check_conv2d_backward_weights, fn)
    assert hint in msg, msg
    assert "w of shape" in msg and "dout of shape" in msg, msg


def test_the_checks_do_not_change_the_learners_inputs():
    """Each call gets copies: a function that scribbles on its input cannot spoil later cases."""

    def scribbling_conv2d(x, w, b, s, p):
        y = scratch.conv2d(x, w, b, stride=s, padding=p)
        x[...] = 0
        w[...] = 0
        return y

    checks.check_conv2d(scribbling_conv2d)


# ----------------------------------------------------------------------- PyTorch: cross-entropy


def _ce(z, y):
    return checks._cross_entropy_reference(z, y)


def _log_p(z, dim=1):
    m = z.max(dim=dim, keepdim=True).values
    return z - m - (z - m).exp().sum(dim=dim, keepdim=True).log()


def _rows(y):
    return torch.arange(len(y))


def _ce_in_place(z, y):
    z -= z.max(dim=1, keepdim=True).values
    return -(z - z.exp().sum(dim=1, keepdim=True).log())[_rows(y), y].mean()


def _ce_lse_detached(z, y):
    lse = (z - z.max(1, keepdim=True).values).exp().sum(1).log() + z.max(1).values
    return (lse.detach() - z[_rows(y), y]).mean()


CE_MISTAKES = [
    (
        lambda z, y: -(z.exp() / z.exp().sum(1, keepdim=True))[_rows(y), y].log().mean(),
        "log-sum-exp trick",
    ),
    (lambda z, y: -torch.softmax(z, 1)[_rows(y), y].log().mean(), "it only fails on large logits"),
    (lambda z, y: _ce(z, y) * len(y), "you summed over the batch"),
    (lambda z, y: -_log_p(z, dim=0)[_rows(y), y].mean(), "softmax over the wrong dimension"),
    (lambda z, y: -_ce(z, y), "the minus sign is missing"),
    (lambda z, y: -_log_p(z).mean(), "only the true class's counts"),
    (lambda z, y: -_log_p(z)[_rows(y), y].sum() / z.numel(), "you divided by N·K"),
    (
        lambda z, y: (
            (z - z.max(1, keepdim=True).values).exp().sum(1).log() - z[_rows(y), y]
        ).mean(),
        "did not add it back",
    ),
    (lambda z, y: _ce(z, y) / np.log(10), "natural logarithm"),
    (lambda z, y: -_log_p(z)[_rows(y), y].exp().mean(), "you forgot the log"),
    (lambda z, y: -_log_p(z)[_rows(y), y], "one loss per example"),
    (lambda z, y: -_log_p(z), "every class of every example"),
    (lambda z, y: None, "forget the `return`"),
    (lambda z, y: _ce(z, y).item(), "not loss.item()"),
    (lambda z, y: _ce(z, y).detach().numpy(), "a NumPy value"),
    (lambda z, y: _ce(z.detach(), y), "cut off from autograd"),
    (_ce_lse_detached, "−onehot/N"),
    (_ce_in_place, "in place"),
    (lambda z, y: F.cross_entropy(z, y), "It calls F.cross_entropy"),
    (lambda z, y: -F.log_softmax(z, 1)[_rows(y), y].mean(), "F.log_softmax"),
    (lambda z, y: (torch.logsumexp(z, 1) - z[_rows(y), y]).mean(), "torch.logsumexp"),
    (lambda z, y: -z.log_softmax(1)[_rows(y), y].mean(), "method .log_softmax()"),
    (lambda z, y: torch.nn.CrossEntropyLoss()(z, y), "nn.CrossEntropyLoss"),
    (lambda z, y: _ce(z.numpy(), y), "NumPy cannot follow gradients"),
    (_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", CE_MISTAKES, ids=[h for _, h in CE_MISTAKES])
def test_check_cross_entropy_names_the_mistake(fn, hint):
    msg = _failure(checks.check_cross_entropy, fn)
    assert hint in msg, msg
    if hint not in ("not written yet", "in place", "NumPy cannot follow gradients"):
        assert msg.startswith("cross_entropy is wrong on case "), msg
        assert "logits of shape" in msg and "y of shape" in msg and "Hint: " in msg, msg


def test_check_cross_entropy_reports_the_case_and_the_values():
    msg = _failure(checks.check_cross_entropy, CE_MISTAKES[0][0])  # no max subtraction
    assert "case 5 of 7: a confident network" in msg and "got nan" in msg, msg
    assert "Cases that fail: 5, 6, 7; cases that pass: 1, 2, 3, 4." in msg, msg
    msg = _failure(checks.check_cross_entropy, CE_MISTAKES[2][0])  # summed
    assert "case 1 of 7" in msg and "Expected a loss of " in msg and "(error " in msg, msg
    assert "cases that pass: 2." in msg  # a batch of one is the same summed or averaged


def test_the_cross_entropy_reference_passes_in_float64_and_other_seeds():
    for seed in (0, 1, 2):
        checks.check_cross_entropy(checks._cross_entropy_reference, seed=seed)
    checks.check_cross_entropy(lambda z, y: checks._cross_entropy_reference(z.double(), y))


def test_library_losses_disabled_blocks_the_library_and_puts_it_back():
    z, y = torch.randn(3, 4), torch.tensor([0, 3, 1])
    before = F.cross_entropy(z, y)
    with pytest.raises(ZeroDivisionError), checks.library_losses_disabled():
        for call in (
            lambda: F.cross_entropy(z, y),
            lambda: F.log_softmax(z, 1),
            lambda: F.nll_loss(z, y),
            lambda: torch.logsumexp(z, 1),
            lambda: torch.log_softmax(z, 1),
            lambda: torch.special.logsumexp(z, 1),
            lambda: z.log_softmax(1),
            lambda: z.logsumexp(1),
            lambda: torch.nn.CrossEntropyLoss()(z, y),
            lambda: torch.nn.NLLLoss()(z, y),
            lambda: torch.nn.LogSoftmax(1)(z),
        ):
            with pytest.raises(checks.LibraryLossUsed):
                call()
        assert torch.softmax(z, 1).shape == (3, 4)  # softmax, exp, log ... stay allowed
        raise ZeroDivisionError  # everything is put back after an error too
    assert torch.equal(F.cross_entropy(z, y), before)
    assert torch.allclose(z.log_softmax(1), torch.log_softmax(z, 1))
    assert torch.allclose(z.logsumexp(1), torch.special.logsumexp(z, 1))
    assert "log_softmax" not in torch.Tensor.__dict__ and "logsumexp" not in torch.Tensor.__dict__
    torch.nn.CrossEntropyLoss()(z, y)


# ----------------------------------------------------------------------- PyTorch: training step


def _step(model, opt, x, y, *, order="zbs", reduction="mean", ret="item", steps=1):
    """A training step with its parts in ``order``: z = zero_grad, b = backward, s = step."""
    loss = F.cross_entropy(model(x), y, reduction=reduction)
    for part in order:
        if part == "z":
            opt.zero_grad()
        elif part == "b":
            loss.backward()
        else:
            for _ in range(steps):
                opt.step()
    if ret == "after":
        with torch.no_grad():
            return F.cross_entropy(model(x), y).item()
    return {"item": lambda: loss.item(), "tensor": lambda: loss, "none": lambda: None}[ret]()


def _step_by_hand(model, opt, x, y, lr=0.1):
    loss = F.cross_entropy(model(x), y)
    model.zero_grad()
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return loss.item()


def _step_new_optimizer(model, opt, x, y):
    return _step(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y)


def _step_no_grad(model, opt, x, y):
    with torch.no_grad():
        loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def _step_backward_twice(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    loss.backward()
    opt.step()
    return loss.item()


def _step_mse(model, opt, x, y):
    logits = model(x)
    loss = ((logits.softmax(1) - F.one_hot(y, logits.shape[1])) ** 2).sum(1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


STEP_MISTAKES = [
    (lambda m, o, x, y: _step(m, o, x, y, order="bs"), "the gradients accumulate"),
    (lambda m, o, x, y: _step(m, o, x, y, order="zb"), "call optimizer.step() after"),
    (lambda m, o, x, y: _step(m, o, x, y, order="zsb"), "ran before loss.backward()"),
    (lambda m, o, x, y: _step(m, o, x, y, order="szb"), "ran before loss.backward()"),
    (lambda m, o, x, y: _step(m, o, x, y, order="bzs"), "erased them"),
    (lambda m, o, x, y: _step(m, o, x, y, ret="tensor"), "return loss.item()"),
    (lambda m, o, x, y: _step(m, o, x, y, ret="after"), "the loss after the update"),
    (lambda m, o, x, y: _step(m, o, x, y, ret="none"), "forget `return loss.item()`"),
    (lambda m, o, x, y: {"loss": _step(m, o, x, y)}, "return just the loss"),
    (lambda m, o, x, y: _step(m, o, x, y, reduction="sum"), "N times too large"),
    (lambda m, o, x, y: _step(m, o, x, y, steps=2), "ran 2 times in one call"),
    (_step_by_hand, "optimizer you were given was never called"),
    (_step_new_optimizer, "optimizer you were given was never called"),
    (_step_mse, "not those of F.cross_entropy(model(x), y)"),
    (_step_no_grad, "cut off from autograd"),
    (_step_backward_twice, "backward() ran twice"),
    (_not_written, "not written yet"),
]


@pytest.mark.parametrize("fn, hint", STEP_MISTAKES, ids=[h for _, h in STEP_MISTAKES])
def test_check_training_step_names_the_mistake(fn, hint):
    msg = _failure(checks.check_training_step, fn)
    assert hint in msg, msg
    if hint != "not written yet":
        assert "x of shape" in msg and "y of shape" in msg and "Hint: " in msg, msg


def test_check_training_step_reports_the_call_and_the_weights():
    msg = _failure(checks.check_training_step, STEP_MISTAKES[0][0])  # no zero_grad
    assert msg.startswith("training_step is wrong on case 1 of 3: a linear model"), msg
    assert "On its second call (the next batch, right after the first step)" in msg, msg
    assert "largest difference " in msg and "in `weight` (shape (3, 4)) at index [" in msg, msg
    msg = _failure(checks.check_training_step, STEP_MISTAKES[1][0])  # no step
    assert "On its first call (a fresh model): the weights did not change" in msg, msg
    msg = _failure(checks.check_training_step, _step_by_hand)  # plain SGD only: case 1 passes
    assert "wrong on case 2 of 3: a small MLP" in msg and "cases that pass: 1." in msg, msg


def test_the_training_step_reference_passes_with_other_seeds_and_orders():
    for seed in (0, 1, 2):
        checks.check_training_step(checks._reference_training_step, seed=seed)
    # zero_grad at the end of the step (for the next one) is right too, as is model.zero_grad()
    checks.check_training_step(lambda m, o, x, y: _step(m, o, x, y, order="bsz"))


def test_the_torch_checks_leave_the_learners_random_state_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    checks.check_training_step(checks._reference_training_step)
    checks.check_cross_entropy(checks._cross_entropy_reference)
    assert torch.equal(torch.get_rng_state(), state)


# ----------------------------------------------------------------------- PyTorch: the U-Net


@pytest.mark.parametrize(
    "cheat",
    [
        lambda unet, x: unet(x),
        lambda unet, x: unet.forward(x),
        lambda unet, x: type(unet).forward(unet, x),
        lambda unet, x: torch.nn.Module.__call__(unet, x),
    ],
    ids=["unet(x)", "unet.forward(x)", "UNet.forward(unet, x)", "Module.__call__"],
)
def test_check_unet_forward_rejects_the_networks_own_forward_pass(cheat):
    msg = _failure(checks.check_unet_forward, cheat)
    assert msg.startswith("unet_forward is wrong on case 1 of "), msg
    assert "It calls UNet.forward" in msg and "switched off in this check and in the grader" in msg
    assert "x of shape (" in msg, msg
    assert "Hint: this task is to write the forward pass yourself, from the U-Net's parts" in msg
    assert "Cases that fail: 1, 2, 3, 4 (all of them)." in msg, msg


def test_check_unet_forward_still_accepts_the_reference_solution(capsys):
    unet_forward = _namespace("10_pix2pix")["unet_forward"]
    checks.check_unet_forward(unet_forward)
    assert capsys.readouterr().out.strip() == "✓ unet_forward: all 4 cases match the reference."
    from course_lib.models import UNet

    unet = UNet(1, 1, (4, 8)).eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(unet(x), unet_forward(unet, x))  # UNet.forward is back after the check


def test_library_unet_forward_disabled_blocks_the_forward_pass_not_the_parts_and_puts_it_back():
    from course_lib.generative.pix2pix import Pix2Pix
    from course_lib.models import UNet

    torch.manual_seed(0)
    unet = UNet(1, 2, (4, 8)).eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        before = unet(x)
        with pytest.raises(ZeroDivisionError), checks.library_unet_forward_disabled():
            for call in (
                lambda: unet(x),
                lambda: unet.forward(x),
                lambda: UNet.forward(unet, x),
                lambda: Pix2Pix(1, 2, (4, 8)).generator(x),  # pix2pix's generator is a UNet
            ):
                with pytest.raises(checks.LibraryUNetForwardUsed, match="from the U-Net's parts"):
                    call()
            # the parts work as usual: down, pool, up, merge, out
            h0 = unet.down[0](x)
            h1 = unet.down[1](unet.pool(h0))
            h = unet.merge[0](torch.cat([h0, unet.up[0](h1)], dim=1))
            assert torch.allclose(unet.out(h), before, atol=1e-6)
            raise ZeroDivisionError  # everything is put back after an error too
        assert torch.equal(unet(x), before)
        assert torch.equal(unet.forward(x), before)
    assert "forward" in UNet.__dict__ and UNet.forward.__qualname__ == "UNet.forward"
