"""Plausible wrong answers to the exercises: what CI submits to nbgrader to prove the grading.

Each entry is a fake student: the student version of ``assignment`` with every task solved
right except one, whose solution cell (nbgrader ``grade_id`` ``cell``) holds ``code`` instead.
``tests/test_exercises.py`` checks that each loses exactly the points of the test cell ``loses``
and keeps every other point, running all of them through the notebook's tests (hidden ones
included) in the test process; ``tests/test_autograde.py`` autogrades the first of each task,
and those without a hint (a runaway, a crash: only nbgrader can run them), in one nbgrader run
per assignment (``loses == "all"``: the submission kills its kernel, and nbgrader scores the
whole notebook 0 while it goes on grading the others). ``tests/test_checks.py`` runs the same
code through the instant check of that task and checks that its message contains ``hint``.

Instructors: this is also a quick way to see what the grader does with a typical mistake.
"""

from __future__ import annotations

WRONG_ANSWERS: dict[str, dict[str, str | None]] = {
    # ------------------------------------------------------------------ 01_convolution
    "flipped_kernel": {
        "assignment": "01_convolution",
        "cell": "conv2d",
        "loses": "test_conv2d",
        "hint": "flipped the kernel",
        "code": '''\
def conv2d(x, w, b=None, stride=1, padding=0):
    """Cross-correlation... but written as a textbook *convolution*: the kernel is flipped."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    w = w[:, :, ::-1, ::-1]  # "convolution flips the kernel"
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    y = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            y[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        y += b.reshape(1, f, 1, 1)
    return y
''',
    },
    "wrong_output_size": {
        "assignment": "01_convolution",
        "cell": "conv2d",
        "loses": "test_conv2d",
        "hint": "off-by-one output size",
        "code": '''\
def conv2d(x, w, b=None, stride=1, padding=0):
    """Cross-correlation with the output size one too small (the + 1 is missing)."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = (h + 2 * padding - kh) // stride
    ow = (wd + 2 * padding - kw) // stride
    y = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            y[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))
    if b is not None:
        y += b.reshape(1, f, 1, 1)
    return y
''',
    },
    "sobel_no_sqrt": {
        "assignment": "01_convolution",
        "cell": "sobel_edges",
        "loses": "test_sobel_edges",
        "hint": "forgot the square root",
        "code": '''\
def sobel_edges(image):
    """Gradient magnitude... without the square root."""
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
    sobel_y = sobel_x.T
    gx = scratch.filter2d(image, sobel_x)
    gy = scratch.filter2d(image, sobel_y)
    return gx**2 + gy**2
''',
    },
    "infinite_loop": {
        "assignment": "01_convolution",
        "cell": "conv2d",
        "loses": "test_conv2d",
        "hint": None,  # the check never returns: it is only autograded (under the time limit)
        "code": '''\
def conv2d(x, w, b=None, stride=1, padding=0):
    """A while loop that forgets to move on: it never ends."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    y = np.zeros((n, f, oh, ow))
    i = 0
    while i < oh:  # forgot i += 1
        for j in range(ow):
            window = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            y[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))
    return y
''',
    },
    # ------------------------------------------------------------------ 02_pooling_backprop
    "avg_instead_of_max": {
        "assignment": "02_pooling_backprop",
        "cell": "max_pool2d",
        "loses": "test_max_pool2d",
        "hint": "average pooling",
        "code": '''\
def max_pool2d(x, kernel_size, stride=None):
    """Average pooling by mistake."""
    k = kernel_size
    s = k if stride is None else stride
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = x[:, :, i * s : i * s + k, j * s : j * s + k].mean(axis=(2, 3))
    return y
''',
    },
    "grad_to_all_positions": {
        "assignment": "02_pooling_backprop",
        "cell": "max_pool2d_backward",
        "loses": "test_max_pool2d_backward",
        "hint": "every position of the pooling window",
        "code": '''\
def max_pool2d_backward(dout, x, kernel_size, stride=None):
    """Sends dout[n, c, i, j] to the whole window instead of to its maximum only."""
    k = kernel_size
    s = k if stride is None else stride
    n, c, oh, ow = dout.shape
    dx = np.zeros(x.shape)
    for i in range(oh):
        for j in range(ow):
            dx[:, :, i * s : i * s + k, j * s : j * s + k] += dout[:, :, i, j][:, :, None, None]
    return dx
''',
    },
    "dw_wrong_axes": {
        "assignment": "02_pooling_backprop",
        "cell": "conv2d_backward_weights",
        "loses": "test_conv2d_backward_weights",
        "hint": "summed over the channels",
        "code": '''\
def conv2d_backward_weights(dout, x, w, stride=1, padding=0):
    """dw summed over the wrong axes: the input window is summed over its channels too,
    as in the forward pass, so every channel of dw[f] gets the same gradient."""
    f, c, kh, kw = w.shape
    n, _, oh, ow = dout.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dw = np.zeros(w.shape)
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            dw += np.einsum("nf,nckl->fkl", dout[:, :, i, j], window)[:, None]
    return dw
''',
    },
    "kernel_crash": {
        "assignment": "02_pooling_backprop",
        "cell": "max_pool2d_backward",
        "loses": "all",
        "hint": None,  # it would end the Python process that runs the check
        "code": '''\
import os


def max_pool2d_backward(dout, x, kernel_size, stride=None):
    """Ends the Python process that runs the notebook, as a crash in C code would."""
    os._exit(1)
''',
    },
    # ------------------------------------------------------------------ 03_cnn_classifier
    "ce_no_max_subtraction": {
        "assignment": "03_cnn_classifier",
        "cell": "cross_entropy",
        "loses": "test_cross_entropy",
        "hint": "log-sum-exp trick",
        "code": '''\
def cross_entropy(logits, y):
    """The textbook formula, without subtracting the row maximum: exp() overflows for large
    logits (inf / inf = nan)."""
    probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
    return -probs[torch.arange(len(y)), y].log().mean()
''',
    },
    "ce_summed_over_batch": {
        "assignment": "03_cnn_classifier",
        "cell": "cross_entropy",
        "loses": "test_cross_entropy",
        "hint": "you summed over the batch",
        "code": '''\
def cross_entropy(logits, y):
    """Stable, but summed over the batch instead of averaged: N times too large."""
    m = logits.max(dim=1, keepdim=True).values
    log_p = logits - m - (logits - m).exp().sum(dim=1, keepdim=True).log()
    return -log_p[torch.arange(len(y)), y].sum()
''',
    },
    "ce_calls_the_library": {
        "assignment": "03_cnn_classifier",
        "cell": "cross_entropy",
        "loses": "test_cross_entropy",
        "hint": "compute the cross-entropy yourself",
        "code": '''\
def cross_entropy(logits, y):
    """Right, but it calls the function it was asked to write (switched off in the tests)."""
    return F.cross_entropy(logits, y)
''',
    },
    "step_without_zero_grad": {
        "assignment": "03_cnn_classifier",
        "cell": "training_step",
        "loses": "test_training_step",
        "hint": "the gradients accumulate",
        "code": '''\
def training_step(model, optimizer, x, y):
    """Forgets optimizer.zero_grad(): from the second call on, each step also uses the
    gradients of all the previous batches."""
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()
''',
    },
    "step_before_backward": {
        "assignment": "03_cnn_classifier",
        "cell": "training_step",
        "loses": "test_training_step",
        "hint": "optimizer.step() ran before loss.backward()",
        "code": '''\
def training_step(model, optimizer, x, y):
    """Steps before backward: the step finds no gradients (zeroed just before), so the weights
    never move."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    optimizer.step()
    loss.backward()
    return loss.item()
''',
    },
    "step_returns_a_tensor": {
        "assignment": "03_cnn_classifier",
        "cell": "training_step",
        "loses": "test_training_step",
        "hint": "return loss.item()",
        "code": '''\
def training_step(model, optimizer, x, y):
    """Right step, but returns the loss tensor (with its whole graph) instead of a float."""
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss
''',
    },
    # ------------------------------------------------------------------ 04_autoencoders
    "transpose_overwrites": {
        "assignment": "04_autoencoders",
        "cell": "conv_transpose2d",
        "loses": "test_conv_transpose2d",
        "hint": "instead of adding it",
        "code": '''\
def conv_transpose2d(x, w, stride=1, padding=0):
    """Writes each kernel copy with '=': where copies overlap, the last one wins."""
    n, _, h, wd = x.shape
    c_out, k = w.shape[1], w.shape[2]
    full = np.zeros((n, c_out, (h - 1) * stride + k, (wd - 1) * stride + k))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride : i * stride + k, j * stride : j * stride + k] = np.einsum(
                "nc,cokl->nokl", x[:, :, i, j], w
            )
    return full[:, :, padding : full.shape[2] - padding, padding : full.shape[3] - padding]
''',
    },
    "transpose_no_crop": {
        "assignment": "04_autoencoders",
        "cell": "conv_transpose2d",
        "loses": "test_conv_transpose2d",
        "hint": "you did not crop the padding",
        "code": '''\
def conv_transpose2d(x, w, stride=1, padding=0):
    """Right, but forgets to crop the padding from the borders."""
    n, _, h, wd = x.shape
    c_out, k = w.shape[1], w.shape[2]
    full = np.zeros((n, c_out, (h - 1) * stride + k, (wd - 1) * stride + k))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride : i * stride + k, j * stride : j * stride + k] += np.einsum(
                "nc,cokl->nokl", x[:, :, i, j], w
            )
    return full
''',
    },
    "reconstruction_mean_over_pixels": {
        "assignment": "04_autoencoders",
        "cell": "reconstruction_loss",
        "loses": "test_reconstruction_loss",
        "hint": "you averaged over the pixels too",
        "code": '''\
def reconstruction_loss(logits, x):
    """The library's loss with its default reduction: a mean over the pixels as well."""
    return F.binary_cross_entropy_with_logits(logits, x)
''',
    },
    "reconstruction_log_of_sigmoid": {
        "assignment": "04_autoencoders",
        "cell": "reconstruction_loss",
        "loses": "test_reconstruction_loss",
        "hint": "log(sigmoid(l)) is log(0)",
        "code": '''\
def reconstruction_loss(logits, x):
    """The textbook formula: log(sigmoid(l)) underflows to -inf for confident logits."""
    p = torch.sigmoid(logits)
    per_image = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).flatten(1).sum(dim=1)
    return per_image.mean()
''',
    },
    "transpose_calls_the_course": {
        "assignment": "04_autoencoders",
        "cell": "conv_transpose2d",
        "loses": "test_conv_transpose2d",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
from course_lib import scratch

def conv_transpose2d(x, w, stride=1, padding=0):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return scratch.conv_transpose2d(x, w, stride=stride, padding=padding)
''',
    },
    "reconstruction_calls_the_course": {
        "assignment": "04_autoencoders",
        "cell": "reconstruction_loss",
        "loses": "test_reconstruction_loss",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
from course_lib.generative import autoencoder

def reconstruction_loss(logits, x):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return autoencoder.reconstruction_loss(logits, x)
''',
    },
    # ------------------------------------------------------------------ 05_vae
    "reparameterize_with_the_variance": {
        "assignment": "05_vae",
        "cell": "reparameterize",
        "loses": "test_reparameterize",
        "hint": "exp(logvar) is the variance",
        "code": '''\
def reparameterize(mu, logvar, generator):
    """Scales the noise by the variance exp(logvar) instead of the standard deviation."""
    eps = torch.randn(mu.shape, generator=generator).to(mu)
    return mu + torch.exp(logvar) * eps
''',
    },
    "reparameterize_without_gradient": {
        "assignment": "05_vae",
        "cell": "reparameterize",
        "loses": "test_reparameterize",
        "hint": "cut off from autograd",
        "code": '''\
def reparameterize(mu, logvar, generator):
    """Samples from detached mu and logvar: right numbers, but no gradient reaches them."""
    return torch.normal(mu.detach(), torch.exp(0.5 * logvar.detach()), generator=generator)
''',
    },
    "kl_wrong_sign": {
        "assignment": "05_vae",
        "cell": "kl_divergence",
        "loses": "test_kl_divergence",
        "hint": "the sign is wrong",
        "code": '''\
def kl_divergence(mu, logvar):
    """The KL with its sign flipped (as in the ELBO, where it is subtracted)."""
    return -0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)
''',
    },
    "kl_without_the_half": {
        "assignment": "05_vae",
        "cell": "kl_divergence",
        "loses": "test_kl_divergence",
        "hint": "the factor 0.5 is missing",
        "code": '''\
def kl_divergence(mu, logvar):
    """Forgets the factor 1/2."""
    return (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)
''',
    },
    "kl_logvar_as_std": {
        "assignment": "05_vae",
        "cell": "kl_divergence",
        "loses": "test_kl_divergence",
        "hint": "not the standard deviation",
        "code": '''\
def kl_divergence(mu, logvar):
    """Takes logvar for the standard deviation sigma: sigma^2 = logvar^2."""
    return 0.5 * (mu.pow(2) + logvar.pow(2) - 1 - torch.log(logvar.pow(2))).sum(dim=1)
''',
    },
    "kl_summed_over_the_batch": {
        "assignment": "05_vae",
        "cell": "kl_divergence",
        "loses": "test_kl_divergence",
        "hint": "you summed or averaged over the batch",
        "code": '''\
def kl_divergence(mu, logvar):
    """One number for the whole batch instead of one KL per image."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum()
''',
    },
    "elbo_minus_kl": {
        "assignment": "05_vae",
        "cell": "negative_elbo",
        "loses": "test_negative_elbo",
        "hint": "the KL term has the wrong sign",
        "code": '''\
def negative_elbo(logits, x, mu, logvar):
    """Subtracts the KL, as the ELBO does, but this is the NEGATIVE ELBO."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    return (bce - vae.kl_divergence(mu, logvar)).mean()
''',
    },
    "elbo_mean_over_pixels": {
        "assignment": "05_vae",
        "cell": "negative_elbo",
        "loses": "test_negative_elbo",
        "hint": "you averaged the reconstruction over the pixels",
        "code": '''\
def negative_elbo(logits, x, mu, logvar):
    """The reconstruction averaged over the pixels: the KL then outweighs it 784 times."""
    return F.binary_cross_entropy_with_logits(logits, x) + vae.kl_divergence(mu, logvar).mean()
''',
    },
    "elbo_summed_over_the_batch": {
        "assignment": "05_vae",
        "cell": "negative_elbo",
        "loses": "test_negative_elbo",
        "hint": "you summed over the batch",
        "code": '''\
def negative_elbo(logits, x, mu, logvar):
    """Nats per batch, not per image: the loss then grows with the batch size."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    return (bce + vae.kl_divergence(mu, logvar)).sum()
''',
    },
    "reparameterize_calls_the_course": {
        "assignment": "05_vae",
        "cell": "reparameterize",
        "loses": "test_reparameterize",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
def reparameterize(mu, logvar, generator):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return vae.reparameterize(mu, logvar, generator)
''',
    },
    "kl_calls_the_course": {
        "assignment": "05_vae",
        "cell": "kl_divergence",
        "loses": "test_kl_divergence",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
def kl_divergence(mu, logvar):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return vae.kl_divergence(mu, logvar)
''',
    },
    "kl_imports_the_course_under_another_name": {
        "assignment": "05_vae",
        "cell": "kl_divergence",
        "loses": "test_kl_divergence",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
from course_lib.generative.vae import kl_divergence as closed_form_kl


def kl_divergence(mu, logvar):
    """Right, but the course's own function under another name (switched off as well)."""
    return closed_form_kl(mu, logvar)
''',
    },
    "kl_is_the_course_function": {
        "assignment": "05_vae",
        "cell": "kl_divergence",
        "loses": "test_kl_divergence",
        "hint": "is switched off in this check and in the grader",
        "code": """\
kl_divergence = vae.kl_divergence  # hands in the course's function itself
""",
    },
    "elbo_calls_the_course": {
        "assignment": "05_vae",
        "cell": "negative_elbo",
        "loses": "test_negative_elbo",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
def negative_elbo(logits, x, mu, logvar):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return vae.negative_elbo(logits, x, mu, logvar)
''',
    },
    # ------------------------------------------------------------------ 06_gan
    "d_loss_log_of_sigmoid": {
        "assignment": "06_gan",
        "cell": "discriminator_loss",
        "loses": "test_discriminator_loss",
        "hint": "log(sigmoid(l)) is log(0)",
        "code": '''\
def discriminator_loss(real_logits, fake_logits):
    """The textbook formula: log(1 - sigmoid(l)) is log(0) = -inf for confident logits."""
    d_real, d_fake = torch.sigmoid(real_logits), torch.sigmoid(fake_logits)
    return -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
''',
    },
    "d_loss_swapped_labels": {
        "assignment": "06_gan",
        "cell": "discriminator_loss",
        "loses": "test_discriminator_loss",
        "hint": "the labels are swapped",
        "code": '''\
def discriminator_loss(real_logits, fake_logits):
    """Stable, but calls the real images fake (label 0) and the fakes real (label 1)."""
    return -(F.logsigmoid(-real_logits).mean() + F.logsigmoid(fake_logits).mean())
''',
    },
    "g_loss_saturating": {
        "assignment": "06_gan",
        "cell": "generator_loss",
        "loses": "test_generator_loss",
        "hint": "the saturating loss",
        "code": '''\
def generator_loss(fake_logits):
    """The minimax game's log(1 - D(G(z))): its gradient vanishes where D rejects the fakes."""
    return F.logsigmoid(-fake_logits).mean()
''',
    },
    "gan_step_without_detach": {
        "assignment": "06_gan",
        "cell": "gan_training_step",
        "loses": "test_gan_training_step",
        "hint": "Detach the fakes in D's update",
        "code": '''\
def gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    """Zeroes both players' gradients once, then lets D's loss reach G (no detach): G steps
    with the gradients of both losses."""
    opt_d.zero_grad()
    opt_g.zero_grad()
    loss_d = gan.discriminator_loss(discriminator(real), discriminator(generator(z)))
    loss_d.backward()
    opt_d.step()
    loss_g = gan.generator_loss(discriminator(generator(z)))
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()
''',
    },
    "gan_step_d_loss_reaches_g": {
        "assignment": "06_gan",
        "cell": "gan_training_step",
        "loses": "test_gan_training_step",
        "hint": "Detach the fakes in D's update",
        "code": '''\
def gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    """No detach in D's loss, but G's gradients are cleared before G's own backward: the
    weights come out right, yet loss_d.backward() computed G's gradients for nothing."""
    loss_d = gan.discriminator_loss(discriminator(real), discriminator(generator(z)))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = gan.generator_loss(discriminator(generator(z)))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()
''',
    },
    "gan_step_reuses_the_freed_graph": {
        "assignment": "06_gan",
        "cell": "gan_training_step",
        "loses": "test_gan_training_step",
        "hint": "freed that part of the graph",
        "code": '''\
def gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    """No detach in D's update, then G's loss on the same fakes: D's backward() has freed
    the generator's graph, and G's backward() raises."""
    fake = generator(z)
    loss_d = gan.discriminator_loss(discriminator(real), discriminator(fake))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = gan.generator_loss(discriminator(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()
''',
    },
    "gan_step_without_zero_grad_d": {
        "assignment": "06_gan",
        "cell": "gan_training_step",
        "loses": "test_gan_training_step",
        "hint": "the discriminator's gradients accumulate",
        "code": '''\
def gan_training_step(generator, discriminator, opt_g, opt_d, real, z):
    """Forgets opt_d.zero_grad(): from the second call on, D steps with what the previous
    call left in its .grad too (its own loss's and G's loss's gradients)."""
    fake = generator(z)
    loss_d = gan.discriminator_loss(discriminator(real), discriminator(fake.detach()))
    loss_d.backward()
    opt_d.step()
    loss_g = gan.generator_loss(discriminator(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()
''',
    },
    "d_loss_calls_the_course": {
        "assignment": "06_gan",
        "cell": "discriminator_loss",
        "loses": "test_discriminator_loss",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
def discriminator_loss(real_logits, fake_logits):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return gan.discriminator_loss(real_logits, fake_logits)
''',
    },
    "g_loss_calls_the_course": {
        "assignment": "06_gan",
        "cell": "generator_loss",
        "loses": "test_generator_loss",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
def generator_loss(fake_logits):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return gan.generator_loss(fake_logits)
''',
    },
    # ------------------------------------------------------------------ 07_conditional_gan
    "input_label_as_a_number": {
        "assignment": "07_conditional_gan",
        "cell": "conditional_input",
        "loses": "test_conditional_input",
        "hint": "as a one-hot vector",
        "code": '''\
def conditional_input(z, labels, n_classes):
    """The class index itself as one more input number, not one-hot."""
    return torch.cat([z, labels[:, None].to(z.dtype)], dim=1)
''',
    },
    "input_joined_along_dim_0": {
        "assignment": "07_conditional_gan",
        "cell": "conditional_input",
        "loses": "test_conditional_input",
        "hint": "join them along the features, dim=1",
        "code": '''\
def conditional_input(z, labels, n_classes):
    """One-hot, but joined along the batch dimension: torch.cat raises."""
    return torch.cat([z, F.one_hot(labels, n_classes).to(z.dtype)], dim=0)
''',
    },
    "projection_term_missing": {
        "assignment": "07_conditional_gan",
        "cell": "projection_logit",
        "loses": "test_projection_logit",
        "hint": "the projection term is missing",
        "code": '''\
def projection_logit(h, labels, w, b, embedding):
    """The unconditional logit only: the label is never looked at."""
    return h @ w + b
''',
    },
    "projection_summed_over_the_batch": {
        "assignment": "07_conditional_gan",
        "cell": "projection_logit",
        "loses": "test_projection_logit",
        "hint": "one dot product per example",
        "code": '''\
def projection_logit(h, labels, w, b, embedding):
    """Sums the projection over everything (no dim): one number added to every logit."""
    return h @ w + b + (embedding[labels] * h).sum()
''',
    },
    "synthetic_in_tanh_range": {
        "assignment": "07_conditional_gan",
        "cell": "synthetic_digits",
        "loses": "test_synthetic_digits",
        "hint": "(x + 1) / 2",
        "code": '''\
def synthetic_digits(generator, n_per_class, n_classes, z_dim, rng):
    """Leaves the images in tanh's [-1, 1]; the classifier works in [0, 1]."""
    n = n_per_class * n_classes
    labels = torch.arange(n) % n_classes
    z = torch.randn(n, z_dim, generator=rng)
    with torch.no_grad():
        images = generator(z, labels)
    return images, labels
''',
    },
    "synthetic_with_gradients": {
        "assignment": "07_conditional_gan",
        "cell": "synthetic_digits",
        "loses": "test_synthetic_digits",
        "hint": "generate under torch.no_grad()",
        "code": '''\
def synthetic_digits(generator, n_per_class, n_classes, z_dim, rng):
    """Right numbers, but the images keep the generator's graph (no torch.no_grad())."""
    n = n_per_class * n_classes
    labels = torch.arange(n) % n_classes
    z = torch.randn(n, z_dim, generator=rng)
    return (generator(z, labels) + 1) / 2, labels
''',
    },
    # ------------------------------------------------------------------ 08_denoising
    "psnr_data_range_not_squared": {
        "assignment": "08_denoising",
        "cell": "psnr",
        "loses": "test_psnr",
        "hint": "square the data range",
        "code": '''\
def psnr(estimate, target, data_range=1.0):
    """R / MSE instead of R^2 / MSE: right for images in [0, 1] only."""
    mse = np.mean((np.asarray(estimate, float) - np.asarray(target, float)) ** 2)
    return 10 * np.log10(data_range / mse)
''',
    },
    "psnr_with_the_rmse": {
        "assignment": "08_denoising",
        "cell": "psnr",
        "loses": "test_psnr",
        "hint": "not its square root",
        "code": '''\
def psnr(estimate, target, data_range=1.0):
    """The root of the mean squared error where the MSE belongs."""
    mse = np.mean((np.asarray(estimate, float) - np.asarray(target, float)) ** 2)
    return 10 * np.log10(data_range**2 / np.sqrt(mse))
''',
    },
    "psnr_in_uint8": {
        "assignment": "08_denoising",
        "cell": "psnr",
        "loses": "test_psnr",
        "hint": "uint8 arithmetic wraps around",
        "code": '''\
def psnr(estimate, target, data_range=1.0):
    """Right for floats, but subtracts and squares uint8 images in uint8: they wrap around."""
    return 10 * np.log10(data_range**2 / np.mean((estimate - target) ** 2))
''',
    },
    "psnr_calls_scikit_image": {
        "assignment": "08_denoising",
        "cell": "psnr",
        "loses": "test_psnr",
        "hint": "It calls skimage.metrics.peak_signal_noise_ratio, which is switched off",
        "code": '''\
def psnr(estimate, target, data_range=1.0):
    """scikit-image's PSNR, which the task asks to write: switched off in the check and grader."""
    return skimage.metrics.peak_signal_noise_ratio(target, estimate, data_range=data_range)
''',
    },
    "noise_sigma_not_scaled": {
        "assignment": "08_denoising",
        "cell": "add_noise",
        "loses": "test_add_noise",
        "hint": "divide it by 255",
        "code": '''\
def add_noise(clean, sigma, generator):
    """Takes sigma as a standard deviation on [0, 1]: 25 instead of 25/255."""
    noise = torch.randn(clean.shape, generator=generator)
    return (clean + sigma.reshape(-1, 1, 1, 1) * noise).clamp(0, 1)
''',
    },
    "noise_not_clipped": {
        "assignment": "08_denoising",
        "cell": "add_noise",
        "loses": "test_add_noise",
        "hint": "clip the result to [0, 1]",
        "code": '''\
def add_noise(clean, sigma, generator):
    """Forgets to clip: values below 0 and above 1."""
    noise = torch.randn(clean.shape, generator=generator)
    return clean + sigma.reshape(-1, 1, 1, 1) / 255 * noise
''',
    },
    "noise_sigma_along_the_width": {
        "assignment": "08_denoising",
        "cell": "add_noise",
        "loses": "test_add_noise",
        "hint": "sigma.reshape(-1, 1, 1, 1)",
        "code": '''\
def add_noise(clean, sigma, generator):
    """sigma of shape (N,) against N x C x H x W: broadcast along the width, not the images."""
    noise = torch.randn(clean.shape, generator=generator)
    return (clean + sigma / 255 * noise).clamp(0, 1)
''',
    },
    "residual_predicts_the_image": {
        "assignment": "08_denoising",
        "cell": "residual_loss",
        "loses": "test_residual_loss",
        "hint": "predicts the NOISE, not the image",
        "code": '''\
def residual_loss(model, noisy, clean):
    """Treats the network's output as the clean image: no residual learning."""
    return F.mse_loss(model(noisy), clean)
''',
    },
    "residual_adds_the_noise": {
        "assignment": "08_denoising",
        "cell": "residual_loss",
        "loses": "test_residual_loss",
        "hint": "subtract the predicted noise",
        "code": '''\
def residual_loss(model, noisy, clean):
    """Adds the predicted noise instead of subtracting it."""
    return ((noisy + model(noisy) - clean) ** 2).mean()
''',
    },
    "psnr_calls_the_course": {
        "assignment": "08_denoising",
        "cell": "psnr",
        "loses": "test_psnr",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
def psnr(estimate, target, data_range=1.0):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return metrics.psnr(estimate, target, data_range)
''',
    },
    "noise_calls_the_course": {
        "assignment": "08_denoising",
        "cell": "add_noise",
        "loses": "test_add_noise",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
from course_lib.restoration import degrade

def add_noise(clean, sigma, generator):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return degrade.add_gaussian_noise(clean, sigma, generator=generator)
''',
    },
    # ------------------------------------------------------------------ 09_restoration
    "masked_mse_over_all_pixels": {
        "assignment": "09_restoration",
        "cell": "masked_mse",
        "loses": "test_masked_mse",
        "hint": "over the missing pixels only",
        "code": '''\
def masked_mse(output, target, mask):
    """The plain mean squared error: the known pixels dilute the loss."""
    return ((output - target) ** 2).mean()
''',
    },
    "masked_mse_nan_when_nothing_is_missing": {
        "assignment": "09_restoration",
        "cell": "masked_mse",
        "loses": "test_masked_mse",
        "hint": "0/0 is NaN",
        "code": '''\
def masked_mse(output, target, mask):
    """Right, except that it divides 0 by 0 when nothing is missing."""
    missing = 1 - mask
    return (missing * (output - target) ** 2).sum() / missing.sum()
''',
    },
    "shuffle_a_and_b_swapped": {
        "assignment": "09_restoration",
        "cell": "pixel_shuffle",
        "loses": "test_pixel_shuffle",
        "hint": "the order of a and b is swapped",
        "code": '''\
def pixel_shuffle(x, r):
    """Puts b on the rows and a on the columns: every r x r block comes out transposed."""
    n, crr, h, w = x.shape
    c = crr // (r * r)
    x = x.reshape(n, c, r, r, h, w)
    x = x.permute(0, 1, 4, 3, 5, 2)  # N x C x H x r (b) x W x r (a)
    return x.reshape(n, c, h * r, w * r)
''',
    },
    "shuffle_calls_the_library": {
        "assignment": "09_restoration",
        "cell": "pixel_shuffle",
        "loses": "test_pixel_shuffle",
        "hint": "switched off in this check and in the grader",
        "code": '''\
def pixel_shuffle(x, r):
    """Right, but it calls the function it was asked to write (switched off in the tests)."""
    return F.pixel_shuffle(x, r)
''',
    },
    "shuffle_imports_the_library_under_another_name": {
        "assignment": "09_restoration",
        "cell": "pixel_shuffle",
        "loses": "test_pixel_shuffle",
        "hint": "switched off in this check and in the grader",
        "code": '''\
from torch.nn.functional import pixel_shuffle as rearrange


def pixel_shuffle(x, r):
    """Right, but torch's own pixel shuffle under another name (switched off as well)."""
    return rearrange(x, r)
''',
    },
    "shuffle_is_the_library_function": {
        "assignment": "09_restoration",
        "cell": "pixel_shuffle",
        "loses": "test_pixel_shuffle",
        "hint": "switched off in this check and in the grader",
        "code": """\
pixel_shuffle = F.pixel_shuffle  # hands in torch's function itself
""",
    },
    "wiener_without_conj": {
        "assignment": "09_restoration",
        "cell": "wiener_deconvolve",
        "loses": "test_wiener_deconvolve",
        "hint": "the complex conjugate",
        "code": '''\
def wiener_deconvolve(blurred, K, L, balance):
    """K where conj(K) belongs: right only for symmetric kernels, whose K is real."""
    X_hat = K * torch.fft.rfft2(blurred) / (K.abs() ** 2 + balance * L.abs() ** 2)
    return torch.fft.irfft2(X_hat, s=blurred.shape[-2:])
''',
    },
    "wiener_without_the_size": {
        "assignment": "09_restoration",
        "cell": "wiener_deconvolve",
        "loses": "test_wiener_deconvolve",
        "hint": "s=(H, W)",
        "code": '''\
def wiener_deconvolve(blurred, K, L, balance):
    """irfft2 without s=(H, W): one column short when the width is odd."""
    X_hat = K.conj() * torch.fft.rfft2(blurred) / (K.abs() ** 2 + balance * L.abs() ** 2)
    return torch.fft.irfft2(X_hat)
''',
    },
    "masked_mse_calls_the_course": {
        "assignment": "09_restoration",
        "cell": "masked_mse",
        "loses": "test_masked_mse",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
def masked_mse(output, target, mask):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return inpaint.masked_mse(output, target, mask)
''',
    },
    # ------------------------------------------------------------------ 10_pix2pix
    "receptive_field_without_strides": {
        "assignment": "10_pix2pix",
        "cell": "receptive_field",
        "loses": "test_receptive_field",
        "hint": "the strides are ignored",
        "code": '''\
def receptive_field(layers):
    """Each layer widens the window by kernel - 1, as if every stride were 1."""
    return 1 + sum(kernel - 1 for kernel, stride in layers)
''',
    },
    "receptive_field_from_the_input": {
        "assignment": "10_pix2pix",
        "cell": "receptive_field",
        "loses": "test_receptive_field",
        "hint": "from the input to the output",
        "code": '''\
def receptive_field(layers):
    """The right recurrence, run from the input instead of from the output."""
    r = 1
    for kernel, stride in layers:
        r = r * stride + (kernel - stride)
    return r
''',
    },
    "pix2pix_loss_saturating": {
        "assignment": "10_pix2pix",
        "cell": "pix2pix_loss",
        "loses": "test_pix2pix_loss",
        "hint": "the saturating loss",
        "code": '''\
def pix2pix_loss(fake_logits, fake, target, lam):
    """The minimax generator loss log(1 - D(G(x))) instead of -log D(G(x))."""
    return lam * (target - fake).abs().mean() + F.logsigmoid(-fake_logits).mean()
''',
    },
    "pix2pix_loss_log_of_sigmoid": {
        "assignment": "10_pix2pix",
        "cell": "pix2pix_loss",
        "loses": "test_pix2pix_loss",
        "hint": "log(sigmoid(l)) is log(0)",
        "code": '''\
def pix2pix_loss(fake_logits, fake, target, lam):
    """Right on ordinary logits, -inf... +inf on a confident discriminator's."""
    return lam * (target - fake).abs().mean() - torch.log(torch.sigmoid(fake_logits)).mean()
''',
    },
    "pix2pix_loss_l2": {
        "assignment": "10_pix2pix",
        "cell": "pix2pix_loss",
        "loses": "test_pix2pix_loss",
        "hint": "pix2pix uses L1",
        "code": '''\
def pix2pix_loss(fake_logits, fake, target, lam):
    """The squared error where pix2pix has the absolute one."""
    return lam * ((target - fake) ** 2).mean() - F.logsigmoid(fake_logits).mean()
''',
    },
    "unet_skip_after_the_upsampled": {
        "assignment": "10_pix2pix",
        "cell": "unet_forward",
        "loses": "test_unet_forward",
        "hint": "the order of the concatenation",
        "code": '''\
def unet_forward(unet, x):
    """The skip concatenated after the upsampled features: the shapes fit, the weights do not."""
    skips, h = [], x
    for k, block in enumerate(unet.down):
        h = block(h if k == 0 else unet.pool(h))
        skips.append(h)
    skips.pop()
    for up, merge in zip(unet.up, unet.merge):
        h = merge(torch.cat([up(h), skips.pop()], dim=1))
    return unet.out(h)
''',
    },
    "unet_without_pooling": {
        "assignment": "10_pix2pix",
        "cell": "unet_forward",
        "loses": "test_unet_forward",
        "hint": "pool (unet.pool) before every down block",
        "code": '''\
def unet_forward(unet, x):
    """No pooling on the way down: the skips and the upsampled features differ in size."""
    skips, h = [], x
    for block in unet.down:
        h = block(h)
        skips.append(h)
    skips.pop()
    for up, merge in zip(unet.up, unet.merge):
        h = merge(torch.cat([skips.pop(), up(h)], dim=1))
    return unet.out(h)
''',
    },
    "unet_calls_the_network": {
        "assignment": "10_pix2pix",
        "cell": "unet_forward",
        "loses": "test_unet_forward",
        "hint": "switched off in this check and in the grader",
        "code": '''\
def unet_forward(unet, x):
    """Right, but it calls the forward pass it was asked to write (switched off in the tests)."""
    return unet(x)
''',
    },
    "receptive_field_calls_the_course": {
        "assignment": "10_pix2pix",
        "cell": "receptive_field",
        "loses": "test_receptive_field",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
def receptive_field(layers):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return pix2pix.receptive_field(layers)
''',
    },
    "pix2pix_loss_calls_the_course": {
        "assignment": "10_pix2pix",
        "cell": "pix2pix_loss",
        "loses": "test_pix2pix_loss",
        "hint": "is switched off in this check and in the grader",
        "code": '''\
def pix2pix_loss(fake_logits, fake, target, lam):
    """Right, but it hands in the course's own function (switched off in the tests)."""
    return pix2pix.pix2pix_loss(fake_logits, fake, target, lam)
''',
    },
}
