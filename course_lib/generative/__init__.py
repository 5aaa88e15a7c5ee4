"""The generative half of the course: one module per model family.

Each module holds its network(s), its loss, its sampler, its step function for
``course_lib.train.train`` and its recipe (a frozen dataclass):

    autoencoder   chapter 04  ConvAutoencoder, reconstruction_loss, nyquist_energy, the denoising
                              step, AutoencoderRecipe (an autoencoder is not a generator)
    vae           chapter 05  VAE, ConditionalVAE, reparameterize, kl_divergence, negative_elbo,
                              nll (importance-weighted), a learned mixture prior
                              (prior_components), VAERecipe, VAE_RECIPE,
                              VAE_MIXTURE_RECIPE, CVAE_RECIPE, ExPostPrior (samples from a
                              mixture fitted to the codes)
    gan           chapters 06-07  GAN, ConditionalGAN, the losses, gan_step, GANRecipe
    pix2pix       chapter 10  Pix2Pix (U-Net generator, PatchGAN), pix2pix_loss, pix2pix_step,
                              Pix2PixRecipe, the paired data (edges -> digits, grey -> colour);
                              a translator, not a sampler: ``translate(x)``

Every digit generator is a ``models.DigitGenerator``: ``model.sample(n, labels=None,
generator=None)`` returns ``n x 1 x 28 x 28`` float32 in [0, 1] on the CPU, and
``metrics.generator_report(model)`` judges it.
"""

import torch


def describe(t: object) -> str:
    """What ``t`` is, for an error message: ``"a torch.int64 tensor"``, ``"list"``, ..."""
    return f"a {t.dtype} tensor" if isinstance(t, torch.Tensor) else type(t).__name__


def check_float_tensors(layout: str, ndim: int | None = None, **tensors: object) -> None:
    """Raise a TypeError unless each of ``tensors`` is a float tensor, and a ValueError unless
    they all have one shape, of ``ndim`` dimensions (default: at least 2), ``layout`` naming it
    in the messages (e.g. ``"N x D"``, ``"N x 1 x 28 x 28"``)."""
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a float tensor {layout}, got {describe(t)}")
    shapes = {tuple(t.shape) for t in tensors.values()}
    first = next(iter(tensors.values()))
    if len(shapes) > 1 or (first.ndim != ndim if ndim is not None else first.ndim < 2):
        names = " and ".join(tensors)
        got = " and ".join(str(tuple(t.shape)) for t in tensors.values())
        raise ValueError(f"{names} must have one and the same shape {layout}, got {got}")


def check_intensities(name: str, t: torch.Tensor) -> None:
    """Raise a ValueError unless the float tensor ``t`` holds intensities in [0, 1] (a target
    image, not logits, not 0-255 pixels)."""
    if t.numel():
        lo, hi = (v.item() for v in torch.aminmax(t.detach()))
        if not (lo >= 0 and hi <= 1):  # also catches NaN
            raise ValueError(
                f"{name} must hold intensities in [0, 1] (the logits come first; 0-255 "
                f"pixels: divide by 255), got values in [{lo:.3g}, {hi:.3g}]"
            )


def check_codes(z: object, z_dim: int) -> None:
    """Raise unless ``z`` is a float tensor of codes ``N x z_dim`` (a decoder's input)."""
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise TypeError(f"z must be a float tensor N x {z_dim}, got {describe(z)}")
    if z.ndim != 2 or z.shape[1] != z_dim:
        raise ValueError(f"z must have shape N x {z_dim} (N x z_dim), got {tuple(z.shape)}")
