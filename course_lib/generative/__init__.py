"""The generative half of the course: one module per model family.

Each module holds its network(s), its loss, its sampler, its step function for
``course_lib.train.train`` and its recipe (a frozen dataclass):

    autoencoder   chapter 04  ConvAutoencoder, reconstruction_loss, nyquist_energy, the denoising
                              step, AutoencoderRecipe (an autoencoder is not a generator)
    vae           chapter 05  VAE, ConditionalVAE, reparameterize, kl_divergence, negative_elbo,
                              nll (importance-weighted), VAERecipe, VAE_RECIPE, CVAE_RECIPE,
                              ExPostPrior (samples from a mixture fitted to the codes)
    gan           chapters 06-07  GAN, ConditionalGAN, the losses, gan_step, GANRecipe
    pix2pix       chapter 10  Pix2Pix (U-Net generator, PatchGAN), pix2pix_loss, pix2pix_step,
                              Pix2PixRecipe, the paired data (edges -> digits, grey -> colour);
                              a translator, not a sampler: ``translate(x)``

Every digit generator is a ``models.DigitGenerator``: ``model.sample(n, labels=None,
generator=None)`` returns ``n x 1 x 28 x 28`` float32 in [0, 1] on the CPU, and
``metrics.generator_report(model)`` judges it.
"""
