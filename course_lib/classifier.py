"""Chapter 03: the digit classifier. Its step function, its evaluation, and its recipe.

    step = supervised_step(model, optimizer)            # (x, y) -> {"loss", "accuracy"}
    train(model, step, (x, y), batch_size=64, epochs=5, optimizers=optimizer)
    evaluate_classifier(model, x_test, y_test)          # {"loss", "accuracy"}

The network itself, ``models.DigitCNN``, is a shared building block (the judge of every later
chapter is one). ``JUDGE`` is the frozen recipe of the judge's shipped weights:
``python -m course_lib.weights build judge`` retrains them with ``train_classifier(JUDGE)``,
and notebook 03 trains its final model with the same recipe object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from course_lib.augment import Compose, RandomRotation, RandomShift
from course_lib.data import digits
from course_lib.models import DigitCNN, evaluating, in_batches
from course_lib.runtime import seed_everything
from course_lib.train import Batch, StepFn, train


def supervised_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> StepFn:
    """The step of a classifier: ``(x, y) -> {"loss", "accuracy"}``.

    ``loss_fn(logits, y)`` defaults to cross-entropy; ``augment(x)`` (optional) transforms the
    batch of images first, e.g. ``course_lib.augment.RandomRotation(10)``; ``scheduler``
    (optional) steps after every optimiser step (give it to ``train``'s ``optimizers`` too, so
    that checkpoints keep it).
    """
    loss_fn = loss_fn or nn.functional.cross_entropy

    def step(batch: Batch) -> dict[str, float]:
        x, y = batch
        if augment is not None:
            x = augment(x)
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        accuracy = (logits.argmax(1) == y).float().mean()
        return {"loss": loss.item(), "accuracy": accuracy.item()}

    return step


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Logits of ``model`` on ``x`` (on the CPU), in eval mode, batch by batch."""
    device = next(model.parameters()).device
    with evaluating(model):
        return in_batches(lambda b: model(b.to(device)).cpu(), batch_size, x)


def evaluate_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``{"loss": mean cross-entropy, "accuracy": fraction correct}`` of ``model`` on ``(x, y)``."""
    logits = predict(model, x)
    return {
        "loss": nn.functional.cross_entropy(logits, y).item(),
        "accuracy": (logits.argmax(1) == y).float().mean().item(),
    }


# ----------------------------------------------------------------------------- the recipe


@dataclass(frozen=True)
class ClassifierRecipe:
    """Everything that decides a trained ``DigitCNN``: network, optimiser, schedule, data.

    Adam with a one-cycle schedule (peak ``max_lr_factor * lr``), light augmentation (random
    rotation and shift, which keep a digit's label), the 4,000 training digits, seed ``seed``.
    """

    widths: tuple[int, int, int] = (32, 64, 128)
    hidden: int = 512
    dropout: float = 0.25
    epochs: int = 12
    batch_size: int = 64
    lr: float = 1e-3
    max_lr_factor: float = 3.0
    rotation: float = 10.0
    shift: int = 2
    seed: int = 0

    def build(self) -> DigitCNN:
        """A fresh, untrained network of this recipe's architecture."""
        return DigitCNN(self.widths, hidden=self.hidden, dropout=self.dropout)

    def optimizers(
        self, model: nn.Module, total_steps: int
    ) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.OneCycleLR]:
        """Adam and its one-cycle schedule over ``total_steps`` optimisation steps."""
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.lr * self.max_lr_factor, total_steps=max(1, total_steps)
        )
        return opt, sched

    def augmentation(self) -> Compose:
        return Compose([RandomRotation(self.rotation), RandomShift(self.shift)])


JUDGE = ClassifierRecipe()


def train_classifier(
    recipe: ClassifierRecipe = JUDGE,
    epochs: int | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
):
    """Train a ``DigitCNN`` with ``recipe`` on the 4,000 training digits.

    ``epochs`` overrides the recipe's (for a shorter run). Returns ``(model in eval mode,
    history)``."""
    if not isinstance(recipe, ClassifierRecipe):
        raise TypeError(f"recipe must be a ClassifierRecipe, got {type(recipe).__name__}")
    epochs = recipe.epochs if epochs is None else epochs
    seed_everything(recipe.seed)
    x, y = digits("train")
    model = recipe.build()
    opt, sched = recipe.optimizers(model, epochs * (len(x) // recipe.batch_size))
    step = supervised_step(model, opt, augment=recipe.augmentation(), scheduler=sched)
    model, history = train(model, step, (x, y), batch_size=recipe.batch_size, epochs=epochs,
                           optimizers={"adam": opt, "schedule": sched}, device=device,
                           seed=recipe.seed, progress=progress, desc="classifier")  # fmt: skip
    return model.eval(), history
