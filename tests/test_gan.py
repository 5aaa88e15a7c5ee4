"""The GAN family's parts beyond the seeds' DCGAN: DiffAugment's shift, R1, the minibatch
standard deviation, the course's networks, the recipe's schedule and the FD monitor."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.data import digits
from course_lib.generative import gan, rejection


def _shift_by_hand(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """One image ``C x H x W`` moved right by dx and down by dy, -1 (black) filling in."""
    out = torch.full_like(x, -1.0)
    h, w = x.shape[-2:]
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 5), pixels=st.integers(0, 3), seed=st.integers(0, 10**6))
def test_translate_shifts_each_image_by_whole_pixels_filling_with_black(n, pixels, seed):
    x = torch.rand(n, 1, 9, 7) * 2 - 1
    torch.manual_seed(seed)
    out = gan.translate(x, pixels)
    torch.manual_seed(seed)
    shifts = torch.randint(-pixels, pixels + 1, (n, 2)) if pixels else torch.zeros(n, 2, dtype=int)
    for i, (dx, dy) in enumerate(shifts.tolist()):
        want = _shift_by_hand(x[i], dx, dy)
        assert torch.equal(out[i], want), f"image {i}, shift ({dx}, {dy}), pixels={pixels}"


def test_translate_lets_the_gradient_through():
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    gan.translate(x, 2).sum().backward()
    assert x.grad is not None and set(x.grad.unique().tolist()) <= {0.0, 1.0}
    assert x.grad.sum() > 0


def test_r1_penalty_of_a_linear_discriminator_is_the_squared_weight_norm():
    w = torch.randn(1, 12)
    x = torch.randn(5, 1, 3, 4, requires_grad=True)
    logits = (x.flatten(1) @ w.T).squeeze(1)
    r1 = gan.r1_penalty(x, logits)
    assert torch.allclose(r1, w.pow(2).sum()), (r1, w.pow(2).sum())


def test_r1_penalty_matches_per_example_gradients():
    d = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    )
    x = torch.randn(3, 1, 4, 4, requires_grad=True)
    r1 = gan.r1_penalty(x, d(x).squeeze(1))
    want = torch.stack(
        [torch.autograd.grad(d(x[i : i + 1]).sum(), x)[0][i].pow(2).sum() for i in range(3)]
    ).mean()
    assert torch.allclose(r1, want, atol=1e-6), (r1, want)
    r1.backward()  # create_graph: the penalty itself trains D
    assert d[1].weight.grad is not None


def test_minibatch_stddev_appends_the_mean_spread_of_the_batch():
    layer = gan.MinibatchStdDev()
    x = torch.randn(6, 3, 4, 4)
    out = layer(x)
    assert out.shape == (6, 4, 4, 4)
    assert torch.equal(out[:, :3], x)
    assert torch.allclose(out[:, 3], x.std(0, unbiased=False).mean().expand(6, 4, 4), atol=1e-6)
    same = x[:1].expand(6, 3, 4, 4).clone().requires_grad_(True)
    spread = layer(same)[:, 3]
    assert spread.abs().max() < 1e-3, "a collapsed batch has (almost) no spread"
    spread.sum().backward()
    assert torch.isfinite(same.grad).all(), "the gradient must stay finite at zero spread"


@pytest.mark.parametrize("architecture", ["dcgan", "course"])
@pytest.mark.parametrize("n_classes", [0, 10])
def test_networks_shapes_and_range(architecture, n_classes):
    model = gan.GAN(z_dim=8, width=8, n_classes=n_classes, architecture=architecture)
    labels = torch.arange(5) if n_classes else None
    fake = model.generator(torch.randn(5, 8), labels)
    assert fake.shape == (5, 1, 28, 28) and fake.abs().max() <= 1
    assert model.discriminator(fake, labels).shape == (5,)


def test_unknown_architecture_and_bad_recipes_are_refused_with_words():
    with pytest.raises(ValueError, match="architecture must be one of"):
        gan.GAN(architecture="stylegan")
    with pytest.raises(ValueError, match="architecture must be one of"):
        gan.GANRecipe(architecture="stylegan")
    with pytest.raises(ValueError, match="r1_gamma and shift must be >= 0"):
        gan.GANRecipe(shift=-1)


def test_the_decay_keeps_the_rate_for_half_the_steps_then_goes_linearly_to_zero():
    recipe = gan.GANRecipe(architecture="course", z_dim=8, width=8, steps=10, decay=True, lr=1.0)
    model = recipe.build()
    opts = recipe.optimizers(model)
    rates = []
    for _ in range(10):
        rates.append(opts["g"].param_groups[0]["lr"])
        for k in ("g", "d"):
            opts[k].step()
        for k in ("g_decay", "d_decay"):
            opts[k].step()
    assert rates == pytest.approx([1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2]), rates
    assert opts["d"].param_groups[0]["lr"] == pytest.approx(0.0)


def test_course_recipe_step_logs_r1_and_trains_with_the_shift():
    recipe = gan.GANRecipe(architecture="course", z_dim=8, width=8, steps=3, batch_size=8,
                           r1_gamma=1.0, shift=2, decay=True)  # fmt: skip
    model, history = gan.train_gan(recipe, progress=False)
    assert len(history.steps) == 3 and history.steps[-1]["r1"] > 0
    assert not model.training


@pytest.mark.parametrize("every", [1, 3])
def test_lazy_r1_is_added_every_k_th_step_with_k_times_the_weight(every, monkeypatch):
    recipe = gan.GANRecipe(architecture="course", z_dim=8, width=8, steps=6, batch_size=8,
                           r1_gamma=1.0, r1_every=every)  # fmt: skip
    _, history = gan.train_gan(recipe, progress=False)
    logged = [t for t, s in enumerate(history.steps) if "r1" in s]
    assert logged == list(range(0, 6, every)), f"r1_every={every}: R1 at steps {logged}"
    # the weight: on a step with R1, loss_d = the logistic loss + gamma / 2 * k * R1
    torch.manual_seed(0)
    model = recipe.build()
    opts = recipe.optimizers(model)
    seen = {}
    original = gan.discriminator_loss
    monkeypatch.setattr(
        gan, "discriminator_loss", lambda r, f: seen.setdefault("bce", original(r, f))
    )
    logs = recipe.step(model, opts)((digits("train")[0][:8],))
    expected = seen["bce"].item() + 1.0 / 2 * every * logs["r1"]
    assert logs["loss_d"] == pytest.approx(expected, rel=1e-5), (every, logs, expected)


@pytest.mark.parametrize("fresh", [True, False])
def test_fresh_noise_runs_the_generator_twice_per_step_and_reuse_once(fresh):
    recipe = gan.GANRecipe(architecture="course", z_dim=8, width=8, batch_size=8, fresh_noise=fresh)
    model = recipe.build()
    opts = recipe.optimizers(model)
    calls = []
    model.generator.register_forward_hook(lambda *_: calls.append(1))
    step = recipe.step(model, opts)
    before = [p.detach().clone() for p in model.generator.parameters()]
    step((digits("train")[0][:8],))
    assert len(calls) == (2 if fresh else 1), f"fresh_noise={fresh}: {len(calls)} forward passes"
    moved = any(
        not torch.equal(a, b) for a, b in zip(before, model.generator.parameters(), strict=True)
    )
    assert moved, f"fresh_noise={fresh}: the generator did not learn"


def test_r1_every_must_be_a_positive_int():
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="r1_every must be an int >= 1"):
            gan.GANRecipe(r1_every=bad)


def test_recipes_are_reproducible_on_the_cpu():
    recipe = dataclasses.replace(gan.GAN_RECIPE, z_dim=8, width=8, steps=4, batch_size=8)
    a, _ = gan.train_gan(recipe, progress=False)
    b, _ = gan.train_gan(recipe, progress=False)
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.isfinite(v.float()).all(), f"{k} is not finite after 4 steps"
        assert torch.equal(v, w), k


@pytest.mark.parametrize("conditional", [False, True])
def test_fd_monitor_measures_every_k_epochs(conditional):
    model = gan.GAN(z_dim=8, width=8, n_classes=10 if conditional else 0, architecture="course")
    monitor = gan.fd_monitor(model.generator.eval(), every=2, n=50)
    assert monitor() == {}
    result = monitor()
    assert set(result) == {"fd", "seconds"} and result["fd"] > 0 and result["seconds"] >= 0


def test_train_gan_on_other_data_with_a_monitor():
    x = torch.rand(40, 1, 28, 28)
    y = torch.arange(40) % 10
    recipe = dataclasses.replace(gan.CGAN_RECIPE, z_dim=8, width=8, steps=4, batch_size=16)
    model, history = gan.train_gan(recipe, progress=False, data=(x, y), monitor_every=1)
    assert any("eval_fd" in e for e in history.epochs)
    assert model.sample(3, labels=[1, 2, 3]).shape == (3, 1, 28, 28)


# ----------------------------------------------------------------------------- the checks


def test_translate_moves_every_channel_of_an_image_alike():
    x = torch.rand(3, 3, 6, 5) * 2 - 1
    torch.manual_seed(0)
    out = gan.translate(x, 2)
    assert out.shape == x.shape
    for c in range(3):
        torch.manual_seed(0)
        one = gan.translate(x[:, c : c + 1], 2)
        assert torch.equal(out[:, c : c + 1], one), f"channel {c}"


@pytest.mark.parametrize(
    "x, pixels, error, match",
    [
        (torch.zeros(2, 28, 28), 1, ValueError, "x must have shape N x C x H x W"),
        (torch.zeros(2, 1, 1, 28, 28), 1, ValueError, "x must have shape N x C x H x W"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.long), 1, TypeError, "float tensor N x C x H x W"),
        (torch.zeros(2, 1, 8, 8), -1, ValueError, "pixels must be an int >= 0, got -1"),
        (torch.zeros(2, 1, 8, 8), 1.5, ValueError, "pixels must be an int >= 0, got 1.5"),
        (torch.zeros(2, 1, 8, 8), True, ValueError, "pixels must be an int >= 0, got True"),
    ],
    ids=["no channel", "five dimensions", "integer x", "negative", "float", "bool"],
)
def test_translate_checks_its_inputs(x, pixels, error, match):
    with pytest.raises(error, match=match):
        gan.translate(x, pixels)


def _linear_d(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(1)


R1_MISTAKES = {
    "real without requires_grad": "real must require gradients",
    "logits under no_grad": "computed with autograd",
    "one logit for the batch": "one logit per real image",
    "logits of other images": "do not depend on real",
}


@pytest.mark.parametrize("mistake", R1_MISTAKES)
def test_r1_penalty_says_what_is_missing(mistake):
    real = torch.randn(3, 1, 4, 4, requires_grad=mistake != "real without requires_grad")
    logits = _linear_d(real)
    if mistake == "logits under no_grad":
        with torch.no_grad():
            logits = _linear_d(real)
    elif mistake == "one logit for the batch":
        logits = logits.sum()
    elif mistake == "logits of other images":
        logits = _linear_d(torch.randn(3, 1, 4, 4, requires_grad=True))
    with pytest.raises(ValueError, match=R1_MISTAKES[mistake]):
        gan.r1_penalty(real, logits)


@pytest.mark.parametrize(
    "real, fake, error, match",
    [
        (torch.zeros(4), torch.zeros(4, 1), ValueError, "same shape apart from the batch size"),
        (torch.zeros(4, 2), torch.zeros(4, 2), ValueError, "real_logits must hold one logit"),
        (torch.zeros(4), torch.zeros(4, 10), ValueError, "fake_logits must hold one logit"),
        (torch.zeros(()), torch.zeros(4), ValueError, "real_logits must hold one logit"),
        (torch.zeros(0), torch.zeros(4), ValueError, "N >= 1"),
        (torch.zeros(4).long(), torch.zeros(4), TypeError, "real_logits must be a float"),
        ([0.0], torch.zeros(4), TypeError, "real_logits must be a float tensor"),
    ],
    ids=["N and N x 1", "two logits per image", "N x 10 fake", "scalar", "empty", "integer",
         "a list"],
)  # fmt: skip
def test_discriminator_loss_checks_the_logits(real, fake, error, match):
    with pytest.raises(error, match=match):
        gan.discriminator_loss(real, fake)


@pytest.mark.parametrize(
    "real, fake",
    [((12,), (5,)), ((16, 1), (16, 1)), ((4, 1, 6, 6), (3, 1, 6, 6))],
    ids=["batches of 12 and 5", "N x 1", "PatchGAN maps"],
)
def test_discriminator_loss_accepts_every_batch_size_and_patch_logits(real, fake):
    r, f = torch.randn(real), torch.randn(fake)
    want = -(torch.nn.functional.logsigmoid(r).mean() + torch.nn.functional.logsigmoid(-f).mean())
    assert torch.equal(gan.discriminator_loss(r, f), want)


@pytest.mark.parametrize(
    "fake, error, match",
    [
        (torch.zeros(4, 2), ValueError, "fake_logits must hold one logit per image"),
        (torch.zeros(()), ValueError, "fake_logits must hold one logit per image"),
        (torch.zeros(4, dtype=torch.int32), TypeError, "fake_logits must be a float tensor"),
    ],
    ids=["N x 2", "scalar", "integer"],
)
@pytest.mark.parametrize("saturating", [False, True])
def test_generator_loss_checks_the_logits(fake, error, match, saturating):
    with pytest.raises(error, match=match):
        gan.generator_loss(fake, saturating=saturating)


@pytest.mark.parametrize("every", [0, -1, 1.5, True])
def test_fd_monitor_needs_a_positive_int(every):
    model = gan.GAN(z_dim=8, width=8, architecture="course")
    with pytest.raises(ValueError, match="every must be an int >= 1"):
        gan.fd_monitor(model.generator, every=every, n=10)


@pytest.mark.parametrize(
    "data",
    [(torch.rand(20, 1, 28, 28),), [torch.rand(20, 1, 28, 28)], torch.rand(20, 1, 28, 28)],
    ids=["a 1-tuple", "a 1-list", "a bare tensor"],
)
def test_train_gan_with_a_conditional_recipe_needs_labels(data):
    recipe = dataclasses.replace(gan.CGAN_RECIPE, z_dim=8, width=8, steps=1, batch_size=8)
    with pytest.raises(ValueError, match=r"conditional recipe trains on \(images, labels\)"):
        gan.train_gan(recipe, progress=False, data=data)


def test_fd_monitor_wants_the_generator_network_not_the_gan():
    model = gan.GAN(z_dim=8, width=8)
    with pytest.raises(TypeError, match=r"model.generator.*got GAN"):
        gan.fd_monitor(model)
    gan.fd_monitor(model.generator)  # the network itself is fine


@pytest.mark.parametrize("architecture", ["dcgan", "course"])
def test_conditional_networks_say_what_labels_they_need(architecture):
    model = gan.ConditionalGAN(z_dim=8, width=8, architecture=architecture)
    z, x = torch.zeros(3, 8), torch.zeros(3, 1, 28, 28)
    for labels, match in [
        (None, "got NoneType"),
        (torch.zeros(3), "got a torch.float32 tensor"),
        (torch.zeros(2).long(), r"of shape \(3,\), got .* of shape \(2,\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            model.generator(z, labels)
        with pytest.raises(ValueError, match=match):
            model.discriminator(x, labels)
    plain = gan.GAN(z_dim=8, width=8, architecture=architecture)
    with pytest.raises(ValueError, match="unconditional: call it without labels"):
        plain.generator(z, torch.zeros(3).long())


def test_gan_step_refuses_a_negative_r1_weight():
    model = gan.GAN(z_dim=8, width=8)
    opts = [torch.optim.Adam(m.parameters()) for m in (model.generator, model.discriminator)]
    with pytest.raises(ValueError, match="r1_gamma and shift must be >= 0, got -1"):
        gan.gan_step(model, *opts, r1_gamma=-1)


# ----------------------------------------------------------------------------- rejection sampling


class _UniformGenerator(torch.nn.Module):
    """A toy G: every pixel of an image is ``2u - 1`` with ``u = Phi(z_0)``, uniform on [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def forward(self, z, labels=None):
        u = torch.distributions.Normal(0.0, 1.0).cdf(z[:, 0])
        return (2 * u - 1)[:, None, None, None].expand(len(z), 1, 28, 28)


class _KnownRatioDiscriminator(torch.nn.Module):
    """A toy D whose logit is ``log(2u)``: exactly ``log p_data / p_g`` for ``p_data(u) = 2u``
    against the uniform ``p_g``. Records the batch sizes it is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))
        self.batches = []

    def forward(self, x, labels=None):
        self.batches.append(len(x))
        return torch.log(x.mean((1, 2, 3)) + 1)[:, None]  # log(2u), from x = 2u - 1


def _toy_gan() -> gan.GAN:
    model = gan.GAN(z_dim=2, width=8, architecture="course")
    model.generator, model.discriminator = _UniformGenerator(), _KnownRatioDiscriminator()
    return model


@pytest.mark.parametrize("gamma, mean, below_half", [(0.0, 2 / 3, 0.25), (-60.0, 0.5, 0.5)])
def test_rejection_sampling_draws_the_data_where_d_knows_the_density_ratio(gamma, mean, below_half):
    """With ``l = log p_data / p_g`` and gamma = 0 the samples kept follow ``p_data(u) = 2u``
    (mean 2/3, a quarter below 1/2); with gamma -> -inf everything is kept (uniform)."""
    sampler = rejection.RejectionSampler(_toy_gan(), gamma=gamma)
    u = sampler.sample(4000, generator=torch.Generator().manual_seed(0))[:, 0, 0, 0]
    assert abs(u.mean() - mean) < 0.02, f"gamma {gamma}: mean {u.mean():.4f}, want {mean:.4f}"
    share = (u < 0.5).float().mean()
    assert abs(share - below_half) < 0.03, f"gamma {gamma}: {share:.3f} below 1/2"
    want_rate = 0.5 if gamma == 0 else 1.0  # the mean of exp(l - l_max) = u, or all
    rate = sampler.acceptance_rate
    assert abs(rate - want_rate) < 0.03, f"gamma {gamma}: rate {rate:.3f}, want {want_rate}"


def test_l_max_is_the_burn_in_maximum_whatever_the_global_rng():
    torch.manual_seed(1)
    a = rejection.RejectionSampler(_toy_gan(), burn_in=2000)
    torch.manual_seed(2)
    b = rejection.RejectionSampler(_toy_gan(), burn_in=2000)
    assert a.log_ratio_max == b.log_ratio_max
    # l = log 2u, and the largest of 2,048 uniforms is within 1% of 1 (all but surely)
    assert math.log(2 * 0.99) < a.log_ratio_max <= math.log(2), a.log_ratio_max


@pytest.mark.parametrize(
    "gamma, l_minus_l_max, want",
    [(0.0, math.log(0.5), 0.5), (math.log(3), math.log(0.5), 0.25), (-math.log(3), math.log(0.5),
     0.75), (0.0, -200.0, 0.0), (5.0, 0.0, 1.0), (5.0, 0.7, 1.0), (-2.0, 3.0, 1.0)],
    ids=["exact", "gamma log 3", "gamma -log 3", "far below", "at l_max", "above", "above, -2"],
)  # fmt: skip
def test_acceptance_is_the_shifted_logit_of_exp_l_minus_l_max(gamma, l_minus_l_max, want):
    """sigmoid(logit(p) - gamma): p = 1/2 and gamma = log 3 give 1/4; above l_max, 1."""
    sampler = rejection.RejectionSampler(_toy_gan(), gamma=gamma, burn_in=64)
    got = float(sampler.acceptance(torch.tensor([sampler.log_ratio_max + l_minus_l_max])))
    assert abs(got - want) < 1e-6, f"gamma {gamma}, l - l_max {l_minus_l_max}: {got}, want {want}"


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_rejection_sampler_judges_whole_batches_repeats_and_keeps_the_gan_s_mode(mode):
    """The course's D reads its whole batch (minibatch std): it must see the batch it trained
    on, in every round and in the burn-in. A shorter seeded draw is the start of a longer."""
    model = _toy_gan().train(mode == "train")
    sampler = rejection.RejectionSampler(model, batch=32, burn_in=100)
    a = sampler.sample(37, generator=torch.Generator().manual_seed(3))
    b = sampler.sample(90, generator=torch.Generator().manual_seed(3))
    assert a.shape == (37, 1, 28, 28) and torch.equal(a, b[:37])
    assert set(model.discriminator.batches) == {32}, sorted(set(model.discriminator.batches))
    sampler.log_ratio(a)
    assert model.training is (mode == "train") and model.discriminator.training is (mode == "train")


def test_rejection_sampler_on_a_real_gan_leaves_batchnorm_statistics_alone():
    """The seeds' D has BatchNorm: judging must use, not update, its running statistics."""
    model = gan.GAN(z_dim=8, width=8).eval()
    before = copy.deepcopy(model.state_dict())
    sampler = rejection.RejectionSampler(model, burn_in=128)
    x = sampler.sample(70, generator=torch.Generator().manual_seed(0))
    assert x.shape == (70, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert not model.training, "sampling must leave an eval-mode GAN in eval mode"
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed while sampling"
    assert 0 < sampler.acceptance_rate <= 1


def test_rejection_sampler_refuses_a_d_it_cannot_use_and_stops_when_d_changes():
    model = _toy_gan()
    model.discriminator.forward = lambda x, labels=None: torch.full((len(x), 1), float("nan"))
    with pytest.raises(ValueError, match="non-finite logits"):
        rejection.RejectionSampler(model)
    with pytest.raises(ValueError, match="lower gamma"):
        rejection.RejectionSampler(_toy_gan(), gamma=20.0)  # keeps about e^-20 of the samples
    model = _toy_gan()
    sampler = rejection.RejectionSampler(model, burn_in=64)
    model.discriminator.forward = lambda x, labels=None: torch.full((len(x), 1), -1e4)
    with pytest.raises(RuntimeError, match="far below the burn-in's rate"):
        sampler.sample(5)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"model": "a gan"}, TypeError, "unconditional GAN"),
        ({"model": gan.ConditionalGAN(z_dim=8, width=8)}, TypeError, "unconditional GAN"),
        ({"gamma": "1"}, TypeError, "gamma must be a number"),
        ({"gamma": True}, TypeError, "gamma must be a number"),
        ({"gamma": float("inf")}, ValueError, "finite"),
        ({"gamma": float("nan")}, ValueError, "finite"),
        ({"burn_in": 0}, ValueError, "burn_in must be a positive int"),
        ({"batch": 2.0}, ValueError, "batch must be a positive int"),
        ({"round_batches": -1}, ValueError, "round_batches must be a positive int"),
    ],
)
def test_rejection_sampler_checks_its_inputs(kwargs, error, match):
    with pytest.raises(error, match=match):
        rejection.RejectionSampler(**{"model": _toy_gan(), **kwargs})
