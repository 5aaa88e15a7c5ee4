"""The generative families (course_lib.generative) and their one interface, ``sample``."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Normal

from course_lib import metrics
from course_lib.generative import gan, vae
from course_lib.models import DigitGenerator

GENERATORS = {
    "VAE": lambda: vae.VAE(z_dim=4, widths=(8, 16), hidden=32),
    "ConditionalVAE": lambda: vae.ConditionalVAE(z_dim=4, widths=(8, 16), hidden=32),
    "GAN": lambda: gan.GAN(z_dim=8, width=8),
    "ConditionalGAN": lambda: gan.ConditionalGAN(z_dim=8, width=8),
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
    recipe = gan.DCGANRecipe(z_dim=8, width=8, steps=5, batch_size=16)
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
    recipe = gan.DCGANRecipe(z_dim=8, width=8, steps=6, batch_size=16, ema_decay=0.9)
    plain, _ = gan.train_gan(dataclasses.replace(recipe, ema_decay=None), progress=False)
    averaged, _ = gan.train_gan(recipe, progress=False)
    same_d = all(torch.equal(a, b) for a, b in zip(plain.discriminator.state_dict().values(),
                 averaged.discriminator.state_dict().values(), strict=True))  # fmt: skip
    assert same_d, "the EMA must not change training, only the generator that is kept"
    w_plain = plain.generator.net[0].weight
    assert not torch.equal(w_plain, averaged.generator.net[0].weight)


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


@pytest.mark.parametrize("name", ["ConditionalVAE", "ConditionalGAN"])
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
    for recipe in (vae.VAERecipe(), gan.DCGANRecipe()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            recipe.seed = 1
