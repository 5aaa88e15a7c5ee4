"""The networks of the course, small enough to train on a laptop CPU.

Shape comments follow one image of the digits: ``1 x 28 x 28``.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.data import check_digit_images


class DigitCNN(nn.Module):
    """The seeds' CNN: three conv-ReLU-max-pool blocks, a dense layer of 512, a dense output.

    ``widths`` are the channels of the three conv blocks (3x3 kernels, padding 1).
    ``features(x)`` returns the 512 activations of the hidden dense layer (after ReLU): the
    feature space the judge uses for Fréchet distances.
    """

    def __init__(
        self,
        widths: tuple[int, int, int] = (32, 64, 128),
        hidden: int = 512,
        n_classes: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 28x28 -> 14x14
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14 -> 7x7
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7 -> 3x3
            nn.Flatten(),  # c3 x 3 x 3 -> 9*c3
            nn.Linear(9 * c3, hidden),
            nn.ReLU(),  # -> 512 features
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_classes))  # -> 10

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 1 x 28 x 28`` in [0, 1] -> ``N x hidden`` penultimate activations."""
        check_digit_images(x)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N x 1 x 28 x 28`` in [0, 1] -> ``N x 10`` logits."""
        return self.head(self.features(x))
