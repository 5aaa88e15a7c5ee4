"""Instant checks for the exercise notebooks: call one on your function and read what it says.

    from course_lib.checks import check_conv2d
    check_conv2d(conv2d)

Each check runs your function on a handful of random cases (small and large, square and not,
with and without stride and padding, batch 1, one channel ...) and compares the result with the
course's reference implementation (``course_lib.scratch`` for the NumPy exercises). The checks
of the PyTorch exercises (03 on) compare with a reference on identical inputs: the value and the
gradient of a loss or of any function, the weights after a training step.

* Right answer: it prints one line, ``✓ conv2d: all 8 cases match the reference.``
* Wrong answer: it raises ``CheckFailed`` (an ``AssertionError``) whose message says which case
  failed (the shapes, stride and padding), the expected and the returned shape, the largest
  error and where it is, and, when it recognises a classic mistake (a flipped kernel, an
  off-by-one output size, a gradient sent to every position of a pooling window, a loss that
  overflows, gradients that accumulate ...), a hint.

The checks are for learning; grading is done by nbgrader's hidden tests in the notebooks.

Where each check lives:

    core              CheckFailed, the case runner and the one failure report (every check);
                      graded_without, CourseFunctionUsed: a task whose answer course_lib
                      holds is checked and graded with that function switched off
    torch_function    check_torch_function, TorchCase: the generic check of a PyTorch function
                      (value and autograd gradients, classic mistakes); the torch checks of
                      every chapter are a table of cases and mistakes on top of it
    convolution       exercise 01: check_conv2d, check_sobel_edges
    pooling_backprop  exercise 02: check_max_pool2d, check_max_pool2d_backward,
                      check_conv2d_backward_weights
    cnn_classifier    exercise 03: check_cross_entropy, check_training_step,
                      library_losses_disabled, LibraryLossUsed
    autoencoder       exercise 04: check_conv_transpose2d, check_reconstruction_loss
    vae               exercise 05: check_reparameterize, check_kl_divergence, check_negative_elbo
    gan               exercise 06: check_discriminator_loss, check_generator_loss,
                      check_gan_training_step
    conditional_gan   exercise 07: check_conditional_input, check_projection_logit,
                      check_synthetic_digits
    denoising         exercise 08: check_psnr, check_add_noise, check_residual_loss,
                      graded_psnr, LibraryPSNRUsed
    restoration       exercise 09: check_masked_mse, check_pixel_shuffle,
                      check_wiener_deconvolve, library_pixel_shuffle_disabled,
                      LibraryPixelShuffleUsed
    pix2pix           exercise 10: check_receptive_field, check_pix2pix_loss, check_unet_forward,
                      library_unet_forward_disabled, LibraryUNetForwardUsed
"""

from course_lib.checks.autoencoder import check_conv_transpose2d, check_reconstruction_loss
from course_lib.checks.cnn_classifier import (
    LibraryLossUsed,
    check_cross_entropy,
    check_training_step,
    library_losses_disabled,
)
from course_lib.checks.cnn_classifier import (
    _cross_entropy_reference as _cross_entropy_reference,
)
from course_lib.checks.cnn_classifier import (
    _reference_training_step as _reference_training_step,
)
from course_lib.checks.conditional_gan import (
    check_conditional_input,
    check_projection_logit,
    check_synthetic_digits,
)
from course_lib.checks.convolution import _sobel_reference as _sobel_reference
from course_lib.checks.convolution import check_conv2d, check_sobel_edges
from course_lib.checks.core import (
    ATOL,
    GRAD_ATOL,
    RTOL,
    CheckFailed,
    CourseFunctionUsed,
    graded_without,
)
from course_lib.checks.denoising import (
    LibraryPSNRUsed,
    check_add_noise,
    check_psnr,
    check_residual_loss,
    graded_psnr,
)
from course_lib.checks.gan import (
    _reference_gan_training_step as _reference_gan_training_step,
)
from course_lib.checks.gan import (
    check_discriminator_loss,
    check_gan_training_step,
    check_generator_loss,
)
from course_lib.checks.pix2pix import (
    LibraryUNetForwardUsed,
    check_pix2pix_loss,
    check_receptive_field,
    check_unet_forward,
    library_unet_forward_disabled,
)
from course_lib.checks.pooling_backprop import (
    check_conv2d_backward_weights,
    check_max_pool2d,
    check_max_pool2d_backward,
)
from course_lib.checks.restoration import (
    LibraryPixelShuffleUsed,
    check_masked_mse,
    check_pixel_shuffle,
    check_wiener_deconvolve,
    library_pixel_shuffle_disabled,
)
from course_lib.checks.torch_function import TorchCase, check_torch_function
from course_lib.checks.vae import (
    check_kl_divergence,
    check_negative_elbo,
    check_reparameterize,
)

__all__ = [
    "ATOL",
    "GRAD_ATOL",
    "RTOL",
    "CheckFailed",
    "CourseFunctionUsed",
    "LibraryLossUsed",
    "LibraryPSNRUsed",
    "LibraryPixelShuffleUsed",
    "LibraryUNetForwardUsed",
    "TorchCase",
    "check_add_noise",
    "check_conditional_input",
    "check_conv2d",
    "check_conv_transpose2d",
    "check_conv2d_backward_weights",
    "check_cross_entropy",
    "check_discriminator_loss",
    "check_gan_training_step",
    "check_generator_loss",
    "check_kl_divergence",
    "check_masked_mse",
    "check_max_pool2d",
    "check_max_pool2d_backward",
    "check_negative_elbo",
    "check_pix2pix_loss",
    "check_pixel_shuffle",
    "check_projection_logit",
    "check_psnr",
    "check_receptive_field",
    "check_reconstruction_loss",
    "check_reparameterize",
    "check_residual_loss",
    "check_sobel_edges",
    "check_synthetic_digits",
    "check_torch_function",
    "check_training_step",
    "check_unet_forward",
    "check_wiener_deconvolve",
    "graded_psnr",
    "graded_without",
    "library_losses_disabled",
    "library_pixel_shuffle_disabled",
    "library_unet_forward_disabled",
]
