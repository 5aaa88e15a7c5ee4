"""Checks of exercise 06 (generative adversarial networks), PyTorch: ``check_discriminator_loss``
and ``check_generator_loss`` (tables of cases and classic mistakes on ``check_torch_function``),
and ``check_gan_training_step`` (a spy on both optimisers, against a reference step on
identical copies of the two networks).
The references of the losses are the library's, ``course_lib.generative.gan``."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.checks.core import (
    _Case,
    _index,
    _not_written,
    _num,
    _raised,
    _run_cases,
    _shape,
    _Wrong,
    graded_without,
)
from course_lib.checks.torch_function import TorchCase, check_torch_function
from course_lib.generative.gan import discriminator_loss as _discriminator_loss_reference
from course_lib.generative.gan import generator_loss as _generator_loss_reference

_UNDERFLOW_HINT = (
    "log(sigmoid(l)) is log(0) = −inf once sigmoid(l) rounds to 0 (l below about −88 in "
    "float32), and log(1 − sigmoid(l)) is −inf once sigmoid(l) rounds to 1 (l above about 17). "
    "Compute the logs from the logits directly: log D = log σ(l) = F.logsigmoid(l), "
    "log(1 − D) = log σ(−l) = F.logsigmoid(−l)."
)
_LOGITS_HINT = (
    "the discriminator gives logits l (any real number), not probabilities: D = sigmoid(l), "
    "so log D = F.logsigmoid(l) and log(1 − D) = F.logsigmoid(−l)."
)


def _ls(x: torch.Tensor) -> torch.Tensor:
    return F.logsigmoid(x)


def _logits(gen: torch.Generator, *shape: int, scale: float = 2.0, shift: float = 0.0):
    return scale * torch.randn(*shape, generator=gen) + shift


# ----------------------------------------------------------------------------- discriminator loss


def _d_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)
    return [
        TorchCase("8 real and 8 fake images", (_logits(gen, 8), _logits(gen, 8))),
        TorchCase("one real and one fake image (N = 1)", (_logits(gen, 1), _logits(gen, 1)),
                  tags={"single"}),
        TorchCase("12 real and 5 fake images: each term is a mean over its own batch",
                  (_logits(gen, 12), _logits(gen, 5))),
        TorchCase("logits N × 1, as nn.Linear(..., 1) gives them",
                  (_logits(gen, 16, 1), _logits(gen, 16, 1))),
        TorchCase("a confident discriminator: logits ~ 60·N(0, 1), up to about ±150",
                  (_logits(gen, 8, scale=60.0), _logits(gen, 8, scale=60.0)), tags={"large"}),
    ]  # fmt: skip


def _naive_d(r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())


def _pooled(r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return -torch.cat([_ls(r).flatten(), _ls(-f).flatten()]).mean()


_HALF_HINT = (
    "your loss is half the reference's, or averages the real and the fake terms together: L_D "
    "is the SUM of two means, −[mean log D(x) + mean log(1 − D(G(z)))], one binary "
    "cross-entropy for the real batch (label 1) plus one for the fake batch (label 0)."
)

_D_MISTAKES = [
    ("the labels are swapped: D should call the real images real (label 1: log D(x)) and the "
     "fakes fake (label 0: log(1 − D(G(z)))). L_D = −[mean log σ(l_real) + mean log σ(−l_fake)].",
     lambda r, f: -(_ls(-r).mean() + _ls(f).mean())),
    ("the minus sign is missing: D maximises log D(x) + log(1 − D(G(z))), so its loss is "
     "minus that, a positive number.",
     lambda r, f: _ls(r).mean() + _ls(-f).mean()),
    ("you summed over the batch: average each term over its own batch (.mean()), so that the "
     "loss does not grow with the batch size.",
     lambda r, f: -(_ls(r).sum() + _ls(-f).sum()) if r.numel() + f.numel() > 2 else None),
    (_HALF_HINT, lambda r, f: 0.5 * _discriminator_loss_reference(r, f)),
    (_HALF_HINT, _pooled),
    ("the fake term is missing: D also has to call the fakes fake, −mean log(1 − D(G(z))) = "
     "−mean F.logsigmoid(−fake_logits).",
     lambda r, f: -_ls(r).mean()),
    ("the real term is missing: D also has to call the real images real, −mean log D(x) = "
     "−mean F.logsigmoid(real_logits).",
     lambda r, f: -_ls(-f).mean()),
    (_LOGITS_HINT, lambda r, f: -(torch.log(r).mean() + torch.log(1 - f).mean())),
    (_UNDERFLOW_HINT, _naive_d),
]  # fmt: skip


def _one_number_hint(case: TorchCase, shape: tuple) -> str:
    n = len(case.args[0])
    if shape and shape[0] == n:
        return "you returned one loss per example: average over the batch (.mean())."
    return "return one number, a 0-dimensional tensor: the loss of the whole batch."


def _large_nonfinite(case: TorchCase) -> str:
    if "large" in case.tags:
        return _UNDERFLOW_HINT
    return "NaN or inf on ordinary logits: is there a log of 0 or of a negative number?"


def check_discriminator_loss(discriminator_loss: Callable, seed: int = 0) -> None:
    """Check ``discriminator_loss(real_logits, fake_logits)``: ``−[mean log σ(real_logits) +
    mean log σ(−fake_logits)]``, each mean over its own batch, computed stably from the logits
    (also for logits of ±150); its value and its gradients with respect to both."""
    # the course's own discriminator_loss is switched off while it runs: calling it is no answer
    discriminator_loss = graded_without(discriminator_loss, "generative.gan.discriminator_loss")
    check_torch_function(
        discriminator_loss,
        "discriminator_loss",
        _d_cases(seed),
        _discriminator_loss_reference,
        _D_MISTAKES,
        arg_names=("real_logits", "fake_logits"),
        output="loss",
        shape_hint=_one_number_hint,
        tag_hints={"large": "it only fails on large logits. " + _UNDERFLOW_HINT},
        nonfinite_hint=_large_nonfinite,
        gradient_formula="It should be (sigmoid(real_logits) − 1) / N for real_logits and "
        "sigmoid(fake_logits) / M for fake_logits (N, M: the two batch sizes).",
    )


# ----------------------------------------------------------------------------- generator loss


def _g_cases(seed: int) -> list[TorchCase]:
    gen = torch.Generator().manual_seed(seed)
    return [
        TorchCase("8 fake images", (_logits(gen, 8),)),
        TorchCase("one fake image (N = 1)", (_logits(gen, 1),), tags={"single"}),
        TorchCase("logits N × 1, as nn.Linear(..., 1) gives them", (_logits(gen, 16, 1),)),
        TorchCase("early in training, D rejects the fakes: logits about −8, D(G(z)) ≈ 0.0003",
                  (_logits(gen, 12, scale=1.0, shift=-8.0),)),
        TorchCase("a confident discriminator: logits ~ 60·N(0, 1), up to about ±150",
                  (_logits(gen, 8, scale=60.0),), tags={"large"}),
    ]  # fmt: skip


_SATURATING_HINT = (
    "that is the saturating loss log(1 − D(G(z))) of the minimax game. Its gradient, "
    "−sigmoid(l)/N, vanishes when D rejects the fakes (D(G(z)) ≈ 0, early in training), so G "
    "learns nothing just when it has most to learn. Use the non-saturating −log D(G(z)) = "
    "−mean F.logsigmoid(fake_logits): same fixed point, strong gradients where G is bad."
)

_G_MISTAKES = [
    (_SATURATING_HINT, lambda f: _ls(-f).mean()),
    ("you labelled the fakes fake, as D does: G wants D to call its images REAL, so its loss is "
     "−log D(G(z)) = −mean F.logsigmoid(fake_logits).",
     lambda f: -_ls(-f).mean()),
    ("the minus sign is missing: G maximises log D(G(z)), so its loss is −log D(G(z)), a "
     "positive number.",
     lambda f: _ls(f).mean()),
    ("you summed over the batch: average over it (.mean()).",
     lambda f: -_ls(f).sum() if f.numel() > 1 else None),
    (_LOGITS_HINT, lambda f: -torch.log(f).mean()),
    (_UNDERFLOW_HINT, lambda f: -torch.log(torch.sigmoid(f)).mean()),
]  # fmt: skip


def check_generator_loss(generator_loss: Callable, seed: int = 0) -> None:
    """Check ``generator_loss(fake_logits)``: the non-saturating ``−mean log σ(fake_logits)``,
    computed stably (also for logits of ±150); its value and its gradient."""
    # the course's own generator_loss is switched off while it runs: calling it is no answer
    generator_loss = graded_without(generator_loss, "generative.gan.generator_loss")
    check_torch_function(
        generator_loss,
        "generator_loss",
        _g_cases(seed),
        _generator_loss_reference,
        _G_MISTAKES,
        arg_names=("fake_logits",),
        output="loss",
        shape_hint=_one_number_hint,
        tag_hints={"large": "it only fails on large logits. " + _UNDERFLOW_HINT},
        nonfinite_hint=_large_nonfinite,
        gradient_formula="It should be (sigmoid(fake_logits) − 1) / N.",
    )


# ----------------------------------------------------------------------------- training step


def _reference_gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    """One round of the game: D's update on real and detached fakes, then G's update through
    the updated D, on the same fakes."""
    fake = generator(z)
    loss_d = _discriminator_loss_reference(discriminator(real), discriminator(fake.detach()))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = _generator_loss_reference(discriminator(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def _step_specs():
    # (label, generator, discriminator, opt_g, opt_d, shape of real, z_dim)
    def adam(p):
        return torch.optim.Adam(p, lr=0.01, betas=(0.5, 0.999))

    return [
        ("linear networks, G = Linear(2, 4), D = Linear(4, 1), both with SGD(lr=0.1)",
         lambda: nn.Linear(2, 4), lambda: nn.Linear(4, 1),
         lambda p: torch.optim.SGD(p, lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1), (6, 4), 2),
        ("small MLPs, G = Linear(3, 8) → ReLU → Linear(8, 5) → Tanh, D = Linear(5, 8) → "
         "LeakyReLU(0.2) → Linear(8, 1) → Flatten(0), both with Adam(lr=0.01, betas=(0.5, 0.999))",
         lambda: nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 5), nn.Tanh()),
         lambda: nn.Sequential(nn.Linear(5, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1),
                               nn.Flatten(0)),
         adam, adam, (8, 5), 3),
        ("tiny images, G = Linear(4, 16) → Tanh → Unflatten to 1 × 4 × 4 with Adam, D = "
         "Conv2d(1, 2, 3) → LeakyReLU(0.2) → Flatten → Linear(8, 1) with SGD(lr=0.05, "
         "momentum=0.9)",
         lambda: nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Unflatten(1, (1, 4, 4))),
         lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.LeakyReLU(0.2), nn.Flatten(),
                               nn.Linear(8, 1)),
         adam, lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9), (5, 1, 4, 4), 4),
    ]  # fmt: skip


class _GameSpy:
    """Watches a learner's step: each ``step()`` of either optimiser, in order, with the
    gradients it found; ``others[k]``: what the other players' ``.grad`` held at step ``k``."""

    def __init__(self, named: dict[str, tuple[nn.Module, object]]) -> None:
        self.steps: list[tuple[str, list]] = []
        self.others: list[dict[str, list]] = []
        every = {who: list(net.parameters()) for who, (net, _) in named.items()}
        for who, (_, opt) in named.items():
            original = opt.step

            def step(*args, _who=who, _original=original, **kwargs):
                self.steps.append((_who, _grads_now(every[_who])))
                self.others.append({w: _grads_now(ps) for w, ps in every.items() if w != _who})
                return _original(*args, **kwargs)

            opt.step = step  # these optimisers are the check's own, made for this case

    def of(self, who: str) -> list[list]:
        return [g for w, g in self.steps if w == who]

    def others_at(self, who: str) -> dict[str, list]:
        """What the other players' ``.grad`` held at the first step of ``who``."""
        return next(o for (w, _), o in zip(self.steps, self.others, strict=True) if w == who)


def _grads_now(params: list) -> list:
    return [None if p.grad is None else p.grad.detach().clone() for p in params]


def _untouched(now: list, before: list) -> bool:
    """``.grad`` as it was (``before``), or cleared (None or zero)."""
    return all(g is None or not g.any() for g in now) or all(
        (g is None and h is None) or (g is not None and h is not None and torch.equal(g, h))
        for g, h in zip(now, before, strict=True)
    )


def _grad_list(loss: torch.Tensor, net: nn.Module) -> list[torch.Tensor]:
    grads = torch.autograd.grad(loss, list(net.parameters()), allow_unused=True, retain_graph=True)
    return [
        torch.zeros_like(p) if g is None else g
        for g, p in zip(grads, net.parameters(), strict=True)
    ]


def _same(a: list, b: list | None) -> bool:
    return b is not None and all(
        g is not None and h is not None and torch.allclose(g, h, rtol=1e-4, atol=1e-6)
        for g, h in zip(a, b, strict=True)
    )


def _plus(a: list, b: list | None) -> list | None:
    if b is None:
        return None
    return [x + (0 if y is None else y) for x, y in zip(a, b, strict=True)]


_STEP_ORDER = (
    "one round is: D's update (opt_d.zero_grad(), loss_d.backward(), opt_d.step()), THEN G's "
    "update through the updated D (opt_g.zero_grad(), loss_g.backward(), opt_g.step())."
)
_DETACH_HINT = (
    "the generator's gradients at opt_g.step() also hold those of the discriminator's loss: "
    "D's loss.backward() went on through the fakes into G. Detach the fakes in D's update, "
    "discriminator(fake.detach()): for D they are constants."
)
_FREED_HINT = (
    "D's loss.backward() went on through the fakes into G and freed that part of the graph; "
    "G's loss then needed it again. Detach the fakes in D's update, "
    "discriminator(fake.detach()): for D they are constants, and G's own loss, computed "
    "afterwards, is the only one that should reach G."
)
_STALE_D_HINT = (
    "G's loss was computed through D before D's update, and opt_d.step() then changed D's "
    "weights in place. Compute G's loss after opt_d.step(): loss_g = "
    "gan.generator_loss(discriminator(fake))."
)


def _on_step_error(err: Exception) -> str | None:
    text = str(err)
    if "backward through the graph a second time" in text:
        return _FREED_HINT
    if "inplace operation" in text or "in-place operation" in text:
        return _STALE_D_HINT
    return None


def _d_grads_hint(got: list, want: list, leftover: list | None) -> str:
    if _same(got, _plus(want, leftover)):
        return (
            "the discriminator's gradients accumulate: when opt_d.step() ran, D's .grad also held "
            "what the previous call left there (its D update, and G's loss.backward(), which goes "
            "through D too). Call opt_d.zero_grad() right before loss_d.backward()."
        )
    if all(g is None or not g.any() for g in got):
        return (
            "when opt_d.step() ran, D's gradients were zero or missing: call loss_d.backward() "
            "after opt_d.zero_grad() and before opt_d.step()."
        )
    return (
        "when opt_d.step() ran, D's gradients were not those of gan.discriminator_loss("
        "discriminator(real), discriminator(generator(z).detach())) on this batch."
    )


def _g_grads_hint(got: list, want: dict) -> str:
    if _same(got, want["no_detach"]):
        return _DETACH_HINT
    if _same(got, want["stale_d"]):
        return (
            "G's update went through D as it was before D's update: compute G's loss after "
            "opt_d.step(), loss_g = gan.generator_loss(discriminator(fake))."
        )
    if _same(got, want["saturating"]):
        return "G's loss is the non-saturating one, gan.generator_loss(discriminator(fake))."
    if _same(got, _plus(want["fresh"], want["leftover"])):
        return (
            "the generator's gradients accumulate: when opt_g.step() ran, G's .grad also held "
            "the previous call's. Call opt_g.zero_grad() right before loss_g.backward()."
        )
    if all(g is None or not g.any() for g in got):
        return (
            "when opt_g.step() ran, G's gradients were zero or missing: call loss_g.backward() "
            "after opt_g.zero_grad() and before opt_g.step()."
        )
    return (
        "when opt_g.step() ran, G's gradients were not those of gan.generator_loss("
        "discriminator(generator(z))) through the updated D."
    )


def _what_g_might_get(g: nn.Module, d_old: nn.Module, d_new: nn.Module, real, z) -> dict:
    """The generator's gradients of the right step and of classic mistakes."""
    fake = g(z)
    fresh = _grad_list(_generator_loss_reference(d_new(fake)), g)
    from_d = _grad_list(_discriminator_loss_reference(d_old(real), d_old(fake)), g)
    return {
        "fresh": fresh,
        "no_detach": _plus(fresh, from_d),
        "stale_d": _grad_list(_generator_loss_reference(d_old(fake)), g),
        "saturating": _grad_list(_generator_loss_reference(d_new(fake), saturating=True), g),
    }


def _returned_hint(got, want: tuple[float, float]) -> str | None:
    """None if ``got`` is ``(loss_d, loss_g)`` as floats equal to ``want``, else a hint."""
    if got is None:
        return "did you forget `return loss_d.item(), loss_g.item()` at the end?"
    if not isinstance(got, tuple | list) or len(got) != 2:
        return "return two numbers, the two losses: `return loss_d.item(), loss_g.item()`."
    if any(isinstance(v, torch.Tensor) for v in got):
        return (
            "return the losses as Python floats, loss_d.item() and loss_g.item(): a tensor "
            "keeps the graph of the whole step alive for as long as you keep it."
        )
    if not all(isinstance(v, float) for v in got):
        return "return two Python floats: loss_d.item(), loss_g.item()."

    def close(a, b):
        return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)

    if close(got[0], want[0]) and close(got[1], want[1]):
        return None
    if close(got[0], want[1]) and close(got[1], want[0]):
        return "the two losses are swapped: return loss_d first, then loss_g."
    return (
        "return the losses you called backward() on: D's (before its update) and G's "
        "(through the updated D)."
    )


def _step_case(fn: Callable, seed: int, k: int, case: _Case, where: str):
    """None if ``fn`` makes the same two rounds as the reference, else what is wrong."""
    _, make_g, make_d, make_opt_g, make_opt_d, shape, z_dim = case.args
    with torch.random.fork_rng(devices=[]):  # the learner's random state stays as it was
        torch.manual_seed(1000 * seed + k + 1)
        g, d = make_g(), make_d()
        batches = [(torch.rand(shape) * 2 - 1, torch.randn(shape[0], z_dim)) for _ in range(2)]
    ref_g, ref_d = copy.deepcopy(g), copy.deepcopy(d)
    opt_g, opt_d = make_opt_g(g.parameters()), make_opt_d(d.parameters())
    ref_opt_g, ref_opt_d = make_opt_g(ref_g.parameters()), make_opt_d(ref_d.parameters())
    spy = _GameSpy({"d": (d, opt_d), "g": (g, opt_g)})
    leftover = {"d": None, "g": None}
    for call, (real, z) in enumerate(batches, start=1):
        when = (
            "its first call (fresh networks)"
            if call == 1
            else "its second call (the next batch, right after the first round)"
        )
        prefix = f"On {when}: "
        # the reference round, on the copies, and what its two steps find in .grad
        g_old, d_old = copy.deepcopy(ref_g), copy.deepcopy(ref_d)
        want_d = _grad_list(
            _discriminator_loss_reference(d_old(real), d_old(g_old(z).detach())), d_old
        )
        want = _reference_gan_training_step(ref_g, ref_d, ref_opt_g, ref_opt_d, real, z)
        want_g = _what_g_might_get(g_old, d_old, ref_d, real, z)
        want_g["leftover"] = leftover["g"]
        spy.steps, spy.others = [], []
        g_before = _grads_now(list(g.parameters()))
        try:
            got = fn(g, d, opt_g, opt_d, real.clone(), z.clone())
        except NotImplementedError:
            raise _not_written("gan_training_step") from None
        except Exception as err:  # anything the learner's code raises
            hint = _on_step_error(err)
            if hint is None:
                return _raised("gan_training_step", err, f"{where}, on {when}")
            return _Wrong([prefix + f"it raised {type(err).__name__}: {err}"], hint)
        order = [w for w, _ in spy.steps]
        for who, opt in (("d", "opt_d"), ("g", "opt_g")):
            if order.count(who) != 1:
                times = "never called" if who not in order else f"called {order.count(who)} times"
                return _Wrong(
                    [prefix + f"{opt}.step() was {times}; one round steps each player once."],
                    _STEP_ORDER,
                )
        if order != ["d", "g"]:
            return _Wrong(
                [prefix + "opt_g.step() ran before opt_d.step(): G moved first."], _STEP_ORDER
            )
        got_d, got_g = spy.of("d")[0], spy.of("g")[0]
        if not _same(got_d, want_d):
            return _Wrong(
                [prefix + "the discriminator's gradients at opt_d.step() differ from the "
                 "reference round's."],
                _d_grads_hint(got_d, want_d, leftover["d"]),
            )  # fmt: skip
        if not _untouched(spy.others_at("d")["g"], g_before):
            return _Wrong(
                [prefix + "the discriminator's update is right, but when opt_d.step() ran, the "
                 "generator's .grad had changed: loss_d.backward() went through G."],
                "Detach the fakes in D's update, discriminator(fake.detach()): then D's loss "
                "stops at the fakes. Without it, backward() also computes G's gradients of D's "
                "loss, wasted work that ends up in G's update unless something clears it first.",
            )  # fmt: skip
        if not _same(got_g, want_g["fresh"]):
            return _Wrong(
                [prefix + "the discriminator's update is right, but the generator's gradients "
                 "at opt_g.step() differ from the reference round's."],
                _g_grads_hint(got_g, want_g),
            )  # fmt: skip
        for net, ref, who in ((d, ref_d, "discriminator"), (g, ref_g, "generator")):
            for (pname, p), q in zip(net.named_parameters(), ref.parameters(), strict=True):
                if torch.allclose(p, q, rtol=1e-5, atol=1e-6):
                    continue
                err = (p.detach() - q.detach()).abs()
                idx = np.unravel_index(int(err.argmax()), tuple(err.shape))
                return _Wrong(
                    [prefix + f"the {who}'s weights after the round differ from the reference's: "
                     f"largest difference {_num(float(err.max()))} in `{pname}` (shape "
                     f"{_shape(p.shape)}) at index {_index(idx)}."],
                    "the gradients were right when each optimizer stepped, so something else "
                    "changed the weights: one opt_d.step() and one opt_g.step() per call, and "
                    "nothing else touches the weights.",
                )  # fmt: skip
        hint = _returned_hint(got, want)
        if hint is not None:
            shown = got if not isinstance(got, tuple | list) else tuple(got)
            return _Wrong(
                [prefix + f"it returned {shown!r}; expected the two losses "
                 f"({_num(want[0])}, {_num(want[1])})."],
                hint,
            )  # fmt: skip
        leftover = {
            "d": [p.grad.detach().clone() if p.grad is not None else None
                  for p in ref_d.parameters()],
            "g": [p.grad.detach().clone() if p.grad is not None else None
                  for p in ref_g.parameters()],
        }  # fmt: skip
    return None


def check_gan_training_step(gan_training_step: Callable, seed: int = 0) -> None:
    """Check ``gan_training_step(generator, discriminator, opt_g, opt_d, real, z) ->
    (loss_d, loss_g)`` on three pairs of small networks and optimisers, two calls each.

    A spy on both optimisers checks that D steps once, then G once; that D's gradients are
    those of ``discriminator_loss(D(real), D(G(z).detach()))`` and G's those of
    ``generator_loss(D(G(z)))`` through the updated D (nothing left over from D's loss or an
    earlier call); the weights after each call must equal a reference round's on identical
    copies, and the return value the two losses as Python floats."""
    cases = []
    for spec in _step_specs():
        label, *_, shape, z_dim = spec
        cases.append(_Case(f"{label}; real of shape {_shape(shape)}, z of shape "
                           f"{_shape((shape[0], z_dim))}", spec, np.zeros(())))  # fmt: skip

    def run_case(k: int, case: _Case, where: str):
        return _step_case(gan_training_step, seed, k, case, where)

    failure = _run_cases(gan_training_step, "gan_training_step", cases, run_case, {})
    if failure is not None:  # the message below says what is wrong
        raise failure.with_traceback(None)
