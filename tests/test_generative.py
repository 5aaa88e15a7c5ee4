"""The generative families (course_lib.generative) and their one interface, ``sample``."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Categorical, Independent, MixtureSameFamily, Normal

from course_lib import metrics
from course_lib.data import digits
from course_lib.generative import gan, vae
from course_lib.models import DigitGenerator

GENERATORS = {
    "VAE": lambda: vae.VAE(z_dim=4, widths=(8, 16), hidden=32),
    "ConditionalVAE": lambda: vae.ConditionalVAE(z_dim=4, widths=(8, 16), hidden=32),
    "GAN": lambda: gan.GAN(z_dim=8, width=8),
    "ConditionalGAN": lambda: gan.ConditionalGAN(z_dim=8, width=8),
    "CourseGAN": lambda: gan.GAN(z_dim=8, width=8, architecture="course"),
    "ConditionalCourseGAN": lambda: gan.ConditionalGAN(z_dim=8, width=8, architecture="course"),
    "ExPostPrior": lambda: vae.ExPostPrior(
        vae.VAE(z_dim=4, widths=(8, 16), hidden=32), digits("train")[0][:200], components=3
    ),
}


# ----------------------------------------------------------------------------- the VAE's terms


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), d=st.integers(1, 9), seed=st.integers(0, 10**6))
def test_kl_divergence_matches_torch_distributions(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(n, d, generator=g, dtype=torch.float64) * 2
    ours = vae.kl_divergence(mu, logvar)
    ref = torch.distributions.kl_divergence(
        Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ).sum(1)
    assert ours.shape == (n,)
    err = (ours - ref).abs().max().item()
    assert err < 1e-10, f"n={n} d={d} seed={seed}: max error {err:.3g}"


def test_reparameterize_is_seeded_has_the_right_law_and_lets_gradients_through():
    mu = torch.tensor([[1.0, -2.0]]).repeat(20000, 1).requires_grad_(True)
    logvar = torch.tensor([[0.0, 2 * torch.tensor(3.0).log()]]).repeat(20000, 1)
    logvar.requires_grad_(True)
    z = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    again = vae.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert torch.equal(z, again), "the same generator seed must give the same z"
    assert torch.allclose(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.06), z.mean(0)
    assert torch.allclose(z.std(0), torch.tensor([1.0, 3.0]), atol=0.06), z.std(0)
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones_like(mu)), "dz/dmu must be 1"
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
    want = 0.5 * torch.exp(0.5 * logvar.detach()) * eps  # dz/dlogvar = sigma * eps / 2
    assert torch.allclose(logvar.grad, want, atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 5)])
def test_bernoulli_and_gaussian_log_densities_match_torch(shape):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=g) * 3
    x = torch.bernoulli(torch.full(shape, 0.4), generator=g)
    ref = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(vae.bernoulli_log_likelihood(logits, x), ref, atol=1e-4)
    z, mu, logvar = (torch.randn(4, 3, generator=g) for _ in range(3))
    ref = Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    assert torch.allclose(vae.gaussian_log_density(z, mu, logvar), ref, atol=1e-5)
    assert torch.allclose(vae.gaussian_log_density(z), Normal(0, 1).log_prob(z).sum(-1))


def test_vae_loss_is_reconstruction_plus_beta_kl_and_importance_weighting_is_tighter():
    torch.manual_seed(0)
    model = vae.VAE(z_dim=4, widths=(8, 16), hidden=32)
    x = torch.bernoulli(torch.full((6, 1, 28, 28), 0.2))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (6, 4) and model.decode(mu).shape == (6, 1, 28, 28)
    terms = model.loss(x, beta=0.5)
    assert torch.isclose(terms["loss"], terms["reconstruction"] + 0.5 * terms["kl"])
    torch.manual_seed(1)
    nelbo = torch.stack([model.loss(x)["loss"] for _ in range(50)]).mean().item()
    iw = model.nll(x, k=300).mean().item()
    assert iw <= nelbo + 0.1, f"importance-weighted {iw:.2f} above the ELBO's {nelbo:.2f}"


def test_conditional_vae_needs_labels_and_unconditional_refuses_them():
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="needs the labels"):
        vae.ConditionalVAE(z_dim=2).encode(x)
    with pytest.raises(ValueError, match="unconditional"):
        vae.VAE(z_dim=2).encode(x, torch.tensor([1, 2]))


BAD_CODES = {
    "wrong z_dim": (torch.zeros(3, 5), None, ValueError, r"z must have shape N x 4 \(N x z_dim\)"),
    "one-dimensional": (torch.zeros(4), None, ValueError, "z must have shape N x 4"),
    "integer z": (torch.zeros(3, 4, dtype=torch.long), None, TypeError, "z must be a float"),
    "float labels": (torch.zeros(3, 4), torch.zeros(3), TypeError, "labels must be an int64"),
    "labels of 2 for 3": (torch.zeros(3, 4), torch.zeros(2).long(), ValueError, r"\(N,\) = \(3,\)"),
    "label 10": (torch.zeros(3, 4), torch.tensor([0, 1, 10]), ValueError, r"indices in 0..9"),
}


@pytest.mark.parametrize("case", BAD_CODES)
def test_decode_says_what_is_wrong_with_the_codes_and_labels(case):
    z, labels, error, match = BAD_CODES[case]
    model = GENERATORS["VAE" if labels is None else "ConditionalVAE"]()
    with pytest.raises(error, match=match):
        model.decode(z, labels)
    if labels is not None:  # the encoder checks them too
        with pytest.raises(error, match=match):
            model.encode(torch.rand(3, 1, 28, 28), labels)


def test_vae_trains_with_the_loop_and_its_loss_falls():
    recipe = vae.VAERecipe(z_dim=4, widths=(8, 16), hidden=32, steps=60, warmup_steps=30)
    model, history = vae.train_vae(recipe, progress=False)
    losses = history.series("loss")
    assert len(losses) == 60 and not model.training
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10, losses[::10]
    assert history.steps[0]["beta"] == 0.0 and history.steps[-1]["beta"] == 1.0


# ----------------------------------------------------------------------------- the GAN's terms


@pytest.mark.parametrize("seed", range(3))
def test_gan_losses_are_the_binary_cross_entropies(seed):
    g = torch.Generator().manual_seed(seed)
    real, fake = torch.randn(7, generator=g) * 3, torch.randn(7, generator=g) * 3
    bce = F.binary_cross_entropy_with_logits
    want_d = bce(real, torch.ones(7)) + bce(fake, torch.zeros(7))
    assert torch.isclose(gan.discriminator_loss(real, fake), want_d, atol=1e-6)
    assert torch.isclose(gan.generator_loss(fake), bce(fake, torch.ones(7)), atol=1e-6)
    assert torch.isclose(
        gan.generator_loss(fake, saturating=True), -bce(fake, torch.zeros(7)), atol=1e-6
    )


def test_the_saturating_loss_vanishes_where_the_discriminator_wins():
    """Early in training D(G(z)) is near 0: the minimax loss gives almost no gradient there."""
    logits = torch.tensor([-8.0, -4.0]).requires_grad_(True)  # D(G(z)) = 3e-4, 0.018
    (g_sat,) = torch.autograd.grad(gan.generator_loss(logits, saturating=True), logits)
    (g_ns,) = torch.autograd.grad(gan.generator_loss(logits), logits)
    assert (g_sat.abs() < 0.01).all() and (g_ns.abs() > 0.45).all(), (g_sat, g_ns)


def test_gan_step_updates_both_networks_and_logs_what_to_watch():
    recipe = gan.GANRecipe(z_dim=8, width=8, steps=5, batch_size=16)
    torch.manual_seed(0)
    before = recipe.build().state_dict()
    model, history = gan.train_gan(recipe, progress=False)
    assert {"loss_d", "loss_g", "d_real", "d_fake"} <= set(history.steps[-1])
    assert len(history.steps) == 5 and not model.training
    assert 0 < history.steps[-1]["d_real"] < 1
    after = model.state_dict()
    for net in ("generator", "discriminator"):
        moved = [k for k in after if k.startswith(net) and not torch.equal(after[k], before[k])]
        assert moved, f"the {net} did not change"


def test_gan_recipe_with_ema_samples_with_the_averaged_generator():
    recipe = gan.GANRecipe(z_dim=8, width=8, steps=6, batch_size=16, ema_decay=0.9)
    plain, _ = gan.train_gan(dataclasses.replace(recipe, ema_decay=None), progress=False)
    averaged, _ = gan.train_gan(recipe, progress=False)
    same_d = all(torch.equal(a, b) for a, b in zip(plain.discriminator.state_dict().values(),
                 averaged.discriminator.state_dict().values(), strict=True))  # fmt: skip
    assert same_d, "the EMA must not change training, only the generator that is kept"
    w_plain = plain.generator.net[0].weight
    assert not torch.equal(w_plain, averaged.generator.net[0].weight)


@pytest.mark.parametrize("components", [1, 4])
def test_ex_post_prior_is_the_mixture_fitted_to_the_codes(components):
    torch.manual_seed(0)
    model = vae.VAE(z_dim=3, widths=(8, 16), hidden=32)
    x = digits("train")[0][:400]
    prior = vae.ExPostPrior(model, x, components=components)
    with torch.no_grad():
        mu = model.encode(x)[0].double()
    z = prior.sample_codes(50_000, torch.Generator().manual_seed(0)).double()
    # a Gaussian mixture fitted by EM has the data's mean and (up to reg_covar) covariance
    mean_gap = (z.mean(0) - mu.mean(0)).abs().max().item()
    spread = mu.std(0).max().item()
    assert mean_gap < 0.03 * spread, f"{components} components: mean off by {mean_gap:.3g}"
    cov_gap = (torch.cov(z.T) - torch.cov(mu.T)).abs().max().item()
    assert cov_gap < 0.05 * spread**2 + 1e-4, f"{components} components: cov off by {cov_gap:.3g}"
    assert torch.allclose(prior.weights.sum(), torch.tensor(1.0))
    images = prior.sample(4, generator=torch.Generator().manual_seed(1))
    expected = torch.sigmoid(model.decode(prior.sample_codes(4, torch.Generator().manual_seed(1))))
    assert torch.allclose(images, expected), "sample() must decode the mixture's codes"


def test_ex_post_prior_checks_its_inputs():
    model = vae.VAE(z_dim=3, widths=(8, 16), hidden=32)
    x = digits("train")[0][:100]
    with pytest.raises(ValueError, match="unconditional VAE"):
        vae.ExPostPrior(vae.ConditionalVAE(z_dim=3, widths=(8, 16), hidden=32), x)
    with pytest.raises(ValueError, match="unconditional VAE"):
        vae.ExPostPrior(gan.GAN(z_dim=8, width=8), x)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="components"):
            vae.ExPostPrior(model, x, components=bad)
    with pytest.raises(ValueError, match="at least 20 digits"):
        vae.ExPostPrior(model, x[:10], components=10)
    with pytest.raises(ValueError, match="28"):
        vae.ExPostPrior(model, torch.rand(50, 1, 8, 8))


# ----------------------------------------------------------------------------- one interface


@pytest.mark.parametrize("name", GENERATORS)
def test_sample_is_n_x_1_x_28_x_28_float32_in_0_1_on_the_cpu_and_repeatable(name):
    torch.manual_seed(0)
    model = GENERATORS[name]()
    assert isinstance(model, DigitGenerator)
    model.train()
    x = model.sample(12, generator=torch.Generator().manual_seed(3))
    assert x.shape == (12, 1, 28, 28) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert 0 <= x.min() and x.max() <= 1 and not x.requires_grad
    assert model.training, f"{name}: sample() must restore the training mode"
    again = model.sample(12, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, again), f"{name}: the same generator seed gave different samples"
    other = model.sample(12, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(x, other)


@pytest.mark.parametrize("name", ["ConditionalVAE", "ConditionalGAN", "ConditionalCourseGAN"])
def test_conditional_sample_draws_the_requested_classes(name):
    model = GENERATORS[name]()
    assert model.conditional
    a = model.sample(3, labels=[7, 7, 7], generator=torch.Generator().manual_seed(0))
    b = model.sample(3, labels=[1, 1, 1], generator=torch.Generator().manual_seed(0))
    assert not torch.equal(a, b), "the label must change the image"
    for bad in ([1, 2], [0, 1, 10], [0.5, 1.0, 2.0]):
        with pytest.raises(ValueError, match="labels"):
            model.sample(3, labels=bad)


@pytest.mark.parametrize("name", ["VAE", "GAN"])
def test_unconditional_sample_refuses_labels_with_words(name):
    with pytest.raises(ValueError, match="unconditional"):
        GENERATORS[name]().sample(2, labels=[1, 2])


@pytest.mark.parametrize("bad, error", [(0, ValueError), (2.5, ValueError), (True, ValueError)])
def test_sample_checks_n(bad, error):
    with pytest.raises(error, match="positive int"):
        GENERATORS["VAE"]().sample(bad)
    with pytest.raises(TypeError, match="torch.Generator"):
        GENERATORS["VAE"]().sample(2, generator=0)


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_report_accepts_a_model(name):
    model = GENERATORS[name]()
    report = metrics.generator_report(model, n=200, generator=torch.Generator().manual_seed(0))
    assert report["n"] == 200 and report["fid_test"] > 0
    assert ("accuracy" in report) == model.conditional
    again = metrics.generator_report(model, n=200, generator=torch.Generator().manual_seed(0))
    assert again == report
    with pytest.raises(ValueError, match="requested_labels go with a tensor"):
        metrics.generator_report(model, requested_labels=[1] * 200)


def test_generator_report_refuses_what_is_neither_images_nor_a_generator():
    with pytest.raises(TypeError, match="torch tensor"):
        metrics.generator_report(object())


def test_recipes_are_frozen():
    for recipe in (vae.VAERecipe(), gan.GANRecipe()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            recipe.seed = 1


def torch_prior(model: vae.VAE):
    """``p(z)`` of ``model`` as a torch.distributions object: N(0, I) or the learned mixture."""
    if not model.prior_components:
        return Independent(Normal(torch.zeros(model.z_dim), 1.0), 1)
    scale = (0.5 * model.prior_logvars).exp()
    return MixtureSameFamily(
        Categorical(logits=model.prior_logits), Independent(Normal(model.prior_means, scale), 1)
    )


def learned_prior(model: vae.VAE) -> vae.VAE:
    """``model``'s mixture prior moved away from its start (different means, variances and
    weights per component), so that a test cannot pass on the initial values."""
    with torch.no_grad():
        model.prior_means.normal_(0.0, 1.5)
        model.prior_logvars.uniform_(-1.5, 0.5)
        model.prior_logits.normal_(0.0, 1.0)
    return model


@pytest.mark.parametrize("components", [0, 1, 5])
def test_learned_prior_log_density_and_samples_match_torch_distributions(components):
    torch.manual_seed(0)
    model = vae.VAE(z_dim=3, widths=(4, 8), hidden=16, prior_components=components)
    if components:
        learned_prior(model)
    z = 2 * torch.randn(7, 2, 3)  # any leading shape
    ref = torch_prior(model).log_prob(z)
    err = (model.log_prior(z) - ref).abs().max().item()
    assert err < 1e-4, f"C={components}: log p(z) off by {err:.3g}"
    a = model.sample_prior(20000, torch.Generator().manual_seed(1))
    b = model.sample_prior(20000, torch.Generator().manual_seed(1))
    assert a.shape == (20000, 3) and torch.equal(a, b), "a seeded draw must repeat"
    # the samples have the prior's mean and covariance (20,000 draws: within ~0.05)
    with torch.no_grad():
        ref_draws = torch_prior(model).sample((200000,))
    for name, ours, theirs in (
        ("mean", a.mean(0), ref_draws.mean(0)),
        ("covariance", a.T.cov(), ref_draws.T.cov()),
    ):
        err = (ours - theirs).abs().max().item()
        assert err < 0.08, f"C={components}: the samples' {name} off by {err:.3g}"


def test_learned_prior_kl_is_the_one_sample_estimate_and_the_closed_form_without_it():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3)
    z = vae.reparameterize(mu, logvar)
    standard = vae.VAE(z_dim=3, widths=(4, 8), hidden=16)
    assert torch.equal(standard.kl(mu, logvar, z), vae.kl_divergence(mu, logvar))
    mixture = learned_prior(vae.VAE(z_dim=3, widths=(4, 8), hidden=16, prior_components=4))
    with torch.no_grad():
        ref = Independent(Normal(mu, (0.5 * logvar).exp()), 1).log_prob(z)
        ref = ref - torch_prior(mixture).log_prob(z)
    err = (mixture.kl(mu, logvar, z) - ref).abs().max().item()
    assert err < 1e-4, f"log q(z|x) - log p(z) off by {err:.3g}"
    # one component at N(0, I): the estimate averages to the closed form
    one = vae.VAE(z_dim=3, widths=(4, 8), hidden=16, prior_components=1)
    with torch.no_grad():
        one.prior_means.zero_()
        zs = vae.reparameterize(mu.repeat(20000, 1), logvar.repeat(20000, 1))
        mean = one.kl(mu.repeat(20000, 1), logvar.repeat(20000, 1), zs).view(20000, 4).mean(0)
    err = (mean - vae.kl_divergence(mu, logvar)).abs().max().item()
    assert err < 0.1, f"the one-sample KL's mean is off the closed form by {err:.3g} nats"


def test_learned_prior_is_learned_and_checked():
    torch.manual_seed(0)
    model = vae.VAE(z_dim=3, widths=(4, 8), hidden=16, prior_components=2)
    x = torch.bernoulli(torch.full((4, 1, 28, 28), 0.3))
    terms = model.loss(x, beta=0.5)
    assert torch.isclose(terms["loss"], terms["reconstruction"] + 0.5 * terms["kl"])
    terms["loss"].backward()
    for name in ("prior_means", "prior_logvars", "prior_logits"):
        grad = getattr(model, name).grad
        assert grad is not None and grad.abs().sum() > 0, f"no gradient reaches {name}"
    recipe = vae.VAERecipe(z_dim=3, widths=(4, 8), hidden=16, prior_components=3)
    assert recipe.build().prior_means.shape == (3, 3)
    assert dataclasses.replace(recipe, conditional=True).build().prior_components == 3
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="prior_components must be an int >= 0"):
            vae.VAE(prior_components=bad)


@pytest.mark.parametrize("components", [0, 3])
@pytest.mark.parametrize("conditional", [False, True])
def test_importance_weighted_nll_matches_torch_distributions(conditional, components):
    """The same draws, weighed with torch.distributions:
    -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)."""
    torch.manual_seed(0)
    cls = vae.ConditionalVAE if conditional else vae.VAE
    model = cls(z_dim=3, widths=(4, 8), hidden=16, prior_components=components)
    if components:
        learned_prior(model)
    x = torch.bernoulli(torch.full((5, 1, 28, 28), 0.3))
    labels = torch.tensor([0, 3, 9, 1, 1]) if conditional else None
    k = 7
    ours = model.nll(x, k=k, labels=labels, generator=torch.Generator().manual_seed(4), chunk=k)
    again = model.nll(x, k=k, labels=labels, generator=torch.Generator().manual_seed(4), chunk=k)
    assert torch.equal(ours, again), "a seeded generator must repeat the estimate"
    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(x, labels)
        std = (0.5 * logvar).exp()
        eps = torch.randn((k * 5, 3), generator=torch.Generator().manual_seed(4)).view(k, 5, 3)
        z = mu + std * eps  # k x 5 x 3, the draws nll makes (sample-major)
        lab = None if labels is None else labels.repeat(k)
        logits = model.decode(z.reshape(-1, 3), lab).view(k, 5, 1, 28, 28)
        log_w = (
            Bernoulli(logits=logits).log_prob(x).flatten(2).sum(-1)
            + torch_prior(model).log_prob(z)
            - Normal(mu, std).log_prob(z).sum(-1)
        )
        ref = -(torch.logsumexp(log_w, 0) - torch.log(torch.tensor(float(k))))
        # the held-out -ELBO: one z per image, from its seeded generator (seed 0)
        z0 = mu + std * torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))
        q0 = Independent(Normal(mu, std), 1)
        kl = (  # the closed form for N(0, I), else log q(z|x) - log p(z) at z
            torch.distributions.kl_divergence(q0, torch_prior(model)) if not components
            else q0.log_prob(z0) - torch_prior(model).log_prob(z0)
        )  # fmt: skip
        rec = -Bernoulli(logits=model.decode(z0, labels)).log_prob(x).flatten(1).sum(1)
        ref_nelbo = (rec + kl).mean().item()
    nelbo = vae.held_out_negative_elbo(model, x, labels)
    err = (ours - ref).abs().max().item()
    assert err < 1e-3, f"conditional={conditional}, C={components}: max error {err:.3g} nats"
    assert nelbo == pytest.approx(ref_nelbo, abs=1e-3), (conditional, components)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        model.nll(x, k=0, labels=labels)


@pytest.mark.parametrize("components", [0, 3])
def test_importance_weighted_training_loss_is_the_bound_and_needs_beta_one(components):
    torch.manual_seed(0)
    model = vae.VAE(z_dim=3, widths=(4, 8), hidden=16, prior_components=components)
    if components:
        learned_prior(model)
    x = torch.bernoulli(torch.full((4, 1, 28, 28), 0.3))
    torch.manual_seed(5)
    iw = model.loss(x, samples=6)["loss"]
    torch.manual_seed(5)
    mu, logvar = model.encode(x)
    eps = torch.randn(24, 3)  # the draw the loss makes: (k * N) x D, sample-major
    z = mu.repeat(6, 1) + (0.5 * logvar.repeat(6, 1)).exp() * eps
    log_w = (
        Bernoulli(logits=model.decode(z)).log_prob(x.repeat(6, 1, 1, 1)).flatten(1).sum(1)
        + torch_prior(model).log_prob(z)
        - Normal(mu.repeat(6, 1), (0.5 * logvar.repeat(6, 1)).exp()).log_prob(z).sum(1)
    ).view(6, 4)
    ref = -(torch.logsumexp(log_w, 0) - torch.log(torch.tensor(6.0))).mean()
    assert torch.isclose(iw, ref, atol=1e-3), (components, iw.item(), ref.item())
    iw.backward()  # it trains: gradients reach the encoder
    assert model.to_stats[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="needs beta = 1"):
        model.loss(x, beta=0.5, samples=2)


def test_recipe_schedule_warm_up_and_augmentation():
    recipe = vae.VAERecipe(steps=100, cosine=True, beta=2.0, warmup_steps=10, rotation=8, shift=1)
    assert [recipe.kl_weight(t) for t in (0, 5, 10, 50)] == [0.0, 1.0, 2.0, 2.0]
    model = vae.VAE(z_dim=2, widths=(4, 8), hidden=8)
    opt, sched = recipe.optimizers(model)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == recipe.lr and abs(lrs[50] - recipe.lr / 2) < 1e-9 and lrs[-1] < 1e-6
    assert repr(recipe.augmentation()) == "Compose([RandomRotation(8), RandomShift(1)])"
    assert vae.VAERecipe().augmentation() is None


def test_the_warm_up_resumes_where_it_stopped(tmp_path):
    """The KL weight follows the scheduler's step count, which checkpoints keep."""
    recipe = vae.VAERecipe(z_dim=2, widths=(4, 8), hidden=8, steps=12, warmup_steps=12)
    whole, history = vae.train_vae(recipe, progress=False)
    betas = history.series("beta")
    vae.train_vae(
        dataclasses.replace(recipe, steps=5), progress=False, checkpoint=tmp_path / "c.pt"
    )
    resumed, history2 = vae.train_vae(recipe, progress=False, checkpoint=tmp_path / "c.pt")
    assert betas == [t / 12 for t in range(12)], betas
    assert history2.series("beta")[-7:] == betas[-7:], history2.series("beta")
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------- the VAE's checks

M, LV = torch.zeros(4, 3), torch.zeros(4, 3)
BAD_LATENTS = {
    "logvar of shape D": (M, torch.zeros(3), ValueError, "same shape N x D"),
    "logvar N x 1": (M, torch.zeros(4, 1), ValueError, "same shape N x D"),
    "mu of shape D": (torch.zeros(3), torch.zeros(3), ValueError, "same shape N x D"),
    "mu N x 1 x D": (torch.zeros(4, 1, 3), torch.zeros(4, 1, 3), ValueError, "same shape N x D"),
    "integer mu": (M.long(), LV, TypeError, "mu must be a float tensor N x D"),
    "logvar a list": (M, [[0.0] * 3] * 4, TypeError, "logvar must be a float tensor N x D"),
}


@pytest.mark.parametrize("function", ["reparameterize", "kl_divergence"])
@pytest.mark.parametrize("case", BAD_LATENTS)
def test_latent_terms_check_mu_and_logvar(function, case):
    mu, logvar, error, match = BAD_LATENTS[case]
    with pytest.raises(error, match=match):
        getattr(vae, function)(mu, logvar)


LOGITS = torch.zeros(2, 1, 28, 28)
BAD_PIXELS = {
    "x of another N": (LOGITS, torch.zeros(1, 1, 28, 28), ValueError, "same shape"),
    "x without its channel": (LOGITS, torch.zeros(2, 28, 28), ValueError, "same shape"),
    "one-dimensional": (torch.zeros(5), torch.zeros(5), ValueError, "same shape N x"),
    "integer x": (LOGITS, LOGITS.long(), TypeError, "x must be a float tensor"),
    "logits a list": ([0.0], LOGITS, TypeError, "logits must be a float tensor"),
    "0-255 pixels": (LOGITS, torch.full((2, 1, 28, 28), 255.0), ValueError, "divide by 255"),
    "arguments swapped": (LOGITS, LOGITS - 1, ValueError, "the logits come first"),
}


@pytest.mark.parametrize("case", BAD_PIXELS)
def test_bernoulli_log_likelihood_and_negative_elbo_check_the_shapes(case):
    logits, x, error, match = BAD_PIXELS[case]
    with pytest.raises(error, match=match):
        vae.bernoulli_log_likelihood(logits, x)
    with pytest.raises(error, match=match):
        vae.negative_elbo(logits, x, torch.zeros(2, 3), torch.zeros(2, 3))


@pytest.mark.parametrize(
    "mu, logvar, match",
    [
        (torch.zeros(3, 4), torch.zeros(3, 4), "same N images"),
        (torch.zeros(2, 4), torch.zeros(4), "same shape N x D"),
    ],
    ids=["mu of 3 images for 2", "logvar of shape D"],
)
def test_negative_elbo_checks_the_latents_against_the_images(mu, logvar, match):
    with pytest.raises(ValueError, match=match):
        vae.negative_elbo(LOGITS, LOGITS, mu, logvar)


def test_bernoulli_log_likelihood_accepts_grey_pixels():
    """Chapter 04's cross-entropy on grey digits: x need not be binary here (only in nll)."""
    x = torch.full((2, 1, 28, 28), 0.3)
    want = -F.binary_cross_entropy_with_logits(LOGITS, x, reduction="none").flatten(1).sum(1)
    assert torch.equal(vae.bernoulli_log_likelihood(LOGITS, x), want)


BINARY = torch.bernoulli(
    torch.full((3, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(0)
)
BAD_NLL = {
    "chunk = 0": (False, BINARY, {"chunk": 0}, ValueError, "chunk must be an int >= 1, got 0"),
    "batch = 0": (False, BINARY, {"batch": 0}, ValueError, "batch must be an int >= 1, got 0"),
    "batch = True": (False, BINARY, {"batch": True}, ValueError, "batch must be an int >= 1"),
    "chunk = 2.5": (False, BINARY, {"chunk": 2.5}, ValueError, "chunk must be an int >= 1"),
    "grey digits": (False, BINARY * 0.5, {}, ValueError, "must hold 0/1 pixels.*binarize"),
    "labels to an unconditional VAE": (
        False, BINARY, {"labels": torch.tensor([0, 1, 2])}, ValueError, "unconditional"
    ),
    "no labels": (True, BINARY, {}, ValueError, "needs the labels"),
    "labels of another N": (
        True, BINARY, {"labels": torch.tensor([0, 1])}, ValueError, r"shape \(N,\) = \(3,\)"
    ),
    "float labels": (
        True, BINARY, {"labels": torch.tensor([0.0, 1.0, 2.0])}, TypeError, "int64 tensor"
    ),
    "labels a list": (True, BINARY, {"labels": [0, 1, 2]}, TypeError, "int64 tensor"),
    "label 10": (
        True, BINARY, {"labels": torch.tensor([0, 1, 10])}, ValueError, r"indices in 0\.\.9"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_NLL)
def test_nll_checks_its_inputs(case):
    conditional, x, kwargs, error, match = BAD_NLL[case]
    model = (vae.ConditionalVAE if conditional else vae.VAE)(z_dim=2, widths=(4, 8), hidden=8)
    with pytest.raises(error, match=match):
        model.nll(x, k=2, **kwargs)


@pytest.mark.parametrize("case", [c for c in BAD_NLL if "=" not in c])
def test_held_out_negative_elbo_checks_its_inputs_as_nll_does(case):
    """The two held-out figures in nats refuse the same inputs (grey digits above all)."""
    conditional, x, kwargs, error, match = BAD_NLL[case]
    model = (vae.ConditionalVAE if conditional else vae.VAE)(z_dim=2, widths=(4, 8), hidden=8)
    with pytest.raises(error, match=match):
        vae.held_out_negative_elbo(model, x, kwargs.get("labels"))
