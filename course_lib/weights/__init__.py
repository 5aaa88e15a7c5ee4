"""The course's shipped weights, by name.

    from course_lib import weights
    judge = weights.load("judge")          # a trained model in eval mode, ready to use

Every shipped checkpoint has a short name, a frozen recipe (a dataclass that lives next to its
model family's code) and a headline metric on held-out data. From the command line:

    python -m course_lib.weights list          # name, size, training time, recipe, metric
    python -m course_lib.weights build judge   # retrain with the recipe, write atomically
    python -m course_lib.weights check         # reload every file safely, recompute its metric

A file is ``{"model": state_dict, "meta": {...}}``, written atomically by
``train.save_checkpoint`` and read with ``torch.load(weights_only=True)``. Each file is at most
5 MB, all of them together at most 40 MB.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from course_lib import classifier, metrics
from course_lib.data import binarized_digits, digits
from course_lib.generative import gan, pix2pix, vae
from course_lib.restoration import classical, deblur, degrade, denoise, inpaint, superres
from course_lib.train import load_checkpoint, save_checkpoint

DIRECTORY = Path(__file__).resolve().parent
MAX_FILE_MB = 5.0
MAX_TOTAL_MB = 40.0


@dataclass(frozen=True)
class Shipped:
    """One shipped checkpoint: how to build, train and judge it.

    ``train(recipe, progress) -> (model, extra meta)`` retrains from scratch with ``recipe``;
    ``recipe.build()`` makes the untrained network to load the weights into;
    ``evaluate(model) -> float`` recomputes the headline ``metric`` on held-out data;
    ``check`` fails when it is worse than the recorded value by more than ``tolerance``;
    ``half``: the weights are stored rounded to float16 (the recorded metric is measured after
    the rounding) and loaded back into the float32 network.
    """

    name: str
    description: str
    recipe: object
    train: Callable[[object, bool], tuple[nn.Module, dict]]
    metric: str
    evaluate: Callable[[nn.Module], float]
    higher_is_better: bool
    tolerance: float
    half: bool = False  # stored in float16 (half the size), loaded back into float32

    @property
    def path(self) -> Path:
        return DIRECTORY / f"{self.name}.pt"

    def worse_by(self, recorded: float, now: float) -> float:
        """How much worse ``now`` is than ``recorded`` (negative when better)."""
        return recorded - now if self.higher_is_better else now - recorded


def _judge_accuracy(model: nn.Module) -> float:
    return classifier.evaluate_classifier(model, *digits("test"))["accuracy"]


def _train_judge(recipe: classifier.ClassifierRecipe, progress: bool):
    model, _ = classifier.train_classifier(recipe, progress=progress)
    return model, {"test_loss": classifier.evaluate_classifier(model, *digits("test"))["loss"]}


def _vae_nll(model: vae.VAE) -> float:
    """Importance-weighted -log p(x) (k = 500, seeded) of the 1,000 binarised test digits."""
    x, y = binarized_digits("test")
    labels = y if model.conditional else None
    return (
        model.nll(x, k=500, labels=labels, generator=torch.Generator().manual_seed(0)).mean().item()
    )


def _judge_accuracy_of_samples(model) -> float:
    """The judge's accuracy on 100 seeded samples of each requested class."""
    return metrics.generator_report(model, generator=torch.Generator().manual_seed(0))["accuracy"]


def _train_vae(recipe: vae.VAERecipe, progress: bool):
    model, history = vae.train_vae(recipe, progress=progress)
    report = metrics.generator_report(model, generator=torch.Generator().manual_seed(0))
    extra = {
        "test_negative_elbo": round(vae.held_out_negative_elbo(model), 2),
        "sample_fid": round(report["fid_test"], 1),
        "sample_coverage": report["coverage"],
    }
    if model.conditional:
        extra["test_nll_iw500"] = round(_vae_nll(model), 2)
    return model, extra


def _vae(name: str, description: str, recipe: vae.VAERecipe) -> Shipped:
    """A shipped unconditional VAE: importance-weighted nats on the held-out digits, float16."""
    return Shipped(name=name, description=description, recipe=recipe, train=_train_vae,
                   metric="test_nll_iw500", evaluate=_vae_nll, higher_is_better=False,
                   tolerance=0.3,  # nats; seeded: only a change of platform moves it
                   half=True)  # fmt: skip


def _sample_fd(model) -> float:
    """Fréchet distance of 1,000 seeded samples to the held-out digits, in the judge's features."""
    return metrics.generator_report(model, generator=torch.Generator().manual_seed(0))["fid_test"]


def _train_gan(recipe: gan.GANRecipe, progress: bool):
    model, history = gan.train_gan(recipe, progress=progress, monitor_every=25)
    report = metrics.generator_report(model, generator=torch.Generator().manual_seed(0))
    curve = [[round(e["eval_seconds"]), round(e["eval_fd"], 1)]
             for e in history.epochs if "eval_fd" in e]  # fmt: skip
    extra = {
        "sample_fid": round(report["fid_test"], 2),
        "sample_coverage": report["coverage"],
        "class_histogram": report["class_histogram"],
        "fd_curve": curve,  # [seconds, Fréchet distance] during training
    }
    return model, extra


def _trainer(train_fn, extra: Callable[[nn.Module], dict] | None = None):
    """``train(recipe, progress) -> (model, extra meta)`` from a family's ``train_*``."""

    def run(recipe, progress: bool):
        model, _ = train_fn(recipe, progress=progress)
        return model, ({} if extra is None else extra(model))

    return run


def _restorer(name: str, description: str, recipe, train_fn, evaluate, metric: str, extra=None):
    """A shipped restoration network: PSNR on the held-out photos, stored in float16."""
    return Shipped(name=name, description=description, recipe=recipe,
                   train=_trainer(train_fn, extra), metric=metric,
                   evaluate=evaluate, higher_is_better=True,
                   tolerance=0.05,  # dB; inputs are seeded, so only a change of platform moves it
                   half=True)  # fmt: skip


def _denoise_table(model: denoise.ResidualDenoiser) -> dict:
    """Mean PSNR on the held-out photos per noise level: the network, non-local means, BM3D."""
    table = {}
    for sigma in (15, 25, 50):
        row = {"network": model.restore, "non_local_means": classical.non_local_means}
        if classical.bm3d_available():
            row["bm3d"] = lambda y, s=sigma: classical.bm3d(y, s)
        table[str(sigma)] = {k: round(denoise.mean_psnr(f, sigma), 2) for k, f in row.items()}
    return {"psnr_table": table}


def _edges_fd(model: pix2pix.Pix2Pix) -> float:
    return pix2pix.edges_report(model)["fd"]


def _colour_psnr(model: pix2pix.Pix2Pix) -> float:
    return pix2pix.colour_report(model)["psnr"]


def _pix2pix_extra(model: pix2pix.Pix2Pix) -> dict:
    """The goal's other figure: judge accuracy (edges) or colourfulness ratio (colour)."""
    if model.generator.out.out_channels == 1:
        return {"judge_accuracy": pix2pix.edges_report(model)["judge_accuracy"]}
    return {"colourfulness_ratio": round(pix2pix.colour_report(model)["colourfulness_ratio"], 3)}


def _pix2pix(task: str, adversarial: str) -> Shipped:
    """A shipped pix2pix generator (with its discriminator) of chapter 10, in float16."""
    suffix = {"none": "_l1", "conditional": "", "unconditional": "_unconditional"}[adversarial]
    loss = {"none": "L1 alone", "conditional": "L1 + conditional GAN",
            "unconditional": "L1 + a GAN whose D does not see the input"}[adversarial]  # fmt: skip
    edges = task == "edges"
    return Shipped(
        name=f"pix2pix_{task}{suffix}",
        description=f"pix2pix {'edges -> digits' if edges else 'grey -> colour'}, {loss} (ch. 10)",
        recipe=pix2pix.RECIPES[task, adversarial],
        train=_trainer(pix2pix.train_pix2pix, _pix2pix_extra),
        metric="test_fd" if edges else "test_psnr",
        evaluate=_edges_fd if edges else _colour_psnr,
        higher_is_better=not edges,
        tolerance=0.1 if edges else 0.05,  # inputs are fixed: only a change of platform moves them
        half=True,
    )


REGISTRY: dict[str, Shipped] = {
    s.name: s
    for s in [
        Shipped(
            name="judge",
            description="DigitCNN classifier that scores every generator (chapter 03)",
            recipe=classifier.JUDGE,
            train=_train_judge,
            metric="test_accuracy",
            evaluate=_judge_accuracy,
            higher_is_better=True,
            tolerance=0.002,  # 2 of the 1,000 held-out digits
        ),
        _vae(
            "vae",
            "convolutional VAE of binarised digits, sample() and nll() (chapter 05)",
            vae.VAE_RECIPE,
        ),
        _vae(
            "vae_mixture",
            "the VAE with a learned prior, a mixture of 200 Gaussians (chapter 05)",
            vae.VAE_MIXTURE_RECIPE,
        ),
        Shipped(
            name="cvae",
            description="conditional VAE: sample(n, labels) draws the digits asked (chapter 05)",
            recipe=vae.CVAE_RECIPE,
            train=_train_vae,
            metric="judge_accuracy",
            evaluate=_judge_accuracy_of_samples,
            higher_is_better=True,
            tolerance=0.01,  # 10 of the 1,000 samples
            half=True,
        ),
        Shipped(
            name="gan",
            description="the course's GAN (resize-convolutions, minibatch std, EMA; chapter 06)",
            recipe=gan.GAN_RECIPE,
            train=_train_gan,
            metric="sample_fid",
            evaluate=_sample_fd,
            higher_is_better=False,
            tolerance=0.5,  # the samples are seeded, so only a change of platform moves it
        ),
        Shipped(
            name="cgan",
            description="conditional GAN: sample(n, labels) draws the digits asked (chapter 07)",
            recipe=gan.CGAN_RECIPE,
            train=_train_gan,
            metric="judge_accuracy",
            evaluate=_judge_accuracy_of_samples,
            higher_is_better=True,
            tolerance=0.01,  # 10 of the 1,000 samples
        ),
        _restorer(
            "denoise",
            "blind denoiser of grey photos, sigma 0-55: restore(image) (chapter 08)",
            denoise.DENOISE_RECIPE,
            denoise.train_denoiser,
            lambda m: denoise.held_out_psnr(m, 25.0),
            "test_psnr_sigma25",
            _denoise_table,
        ),
        _restorer(
            "inpaint",
            "inpainting U-Net given the mask: restore(image, mask) (chapter 09)",
            inpaint.INPAINT_RECIPE,
            inpaint.train_inpainter,
            lambda m: inpaint.held_out_psnr(m, "random"),
            "test_psnr_random50",
            lambda m: {"test_psnr_scribbles": round(inpaint.held_out_psnr(m, "scribble"), 2)},
        ),
        _restorer(
            "deblur",
            "Wiener + CNN deblurrer: restore(blurred, kernel) (chapter 09)",
            deblur.DEBLUR_RECIPE,
            deblur.train_deblurrer,
            deblur.held_out_psnr,
            "test_psnr_gaussian2",
            lambda m: {
                "test_psnr_motion11": round(
                    deblur.held_out_psnr(m, degrade.motion_kernel(11, 30)), 2
                )
            },
        ),
        _restorer(
            "superres_x2",
            "ESPCN super-resolution x2: restore(low) (chapter 09)",
            superres.SR_X2_RECIPE,
            superres.train_superres,
            superres.held_out_psnr,
            "test_psnr",
        ),
        _restorer(
            "superres_x3",
            "ESPCN super-resolution x3: restore(low) (chapter 09)",
            superres.SR_X3_RECIPE,
            superres.train_superres,
            superres.held_out_psnr,
            "test_psnr",
        ),
        *[_pix2pix(task, adv) for task in pix2pix.TASKS for adv in pix2pix.ADVERSARIAL],
    ]
}


def names() -> list[str]:
    """The names of the shipped weights."""
    return list(REGISTRY)


def entry(name: str) -> Shipped:
    if name not in REGISTRY:
        raise ValueError(f"no shipped weights named {name!r}; choose one of: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def meta(name: str) -> dict:
    """What is recorded with the weights: recipe, headline metric, training time, versions."""
    return dict(_read(entry(name))["meta"])


def _read(shipped: Shipped, path: Path | None = None) -> dict:
    path = shipped.path if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"the weights {shipped.name!r} are missing ({path}); recreate them with "
            f"`python -m course_lib.weights build {shipped.name}`"
        )
    return load_checkpoint(path)  # torch.load(..., weights_only=True)


def recorded_recipe(shipped: Shipped, state: dict):
    """The recipe a file was trained with (its ``meta["recipe"]``), as ``shipped``'s recipe
    class; fields the file does not record take the class's defaults."""
    recorded = state.get("meta", {}).get("recipe")
    cls = type(shipped.recipe)
    if not isinstance(recorded, dict):
        raise ValueError(f"{shipped.name}: the file records no recipe (meta['recipe'])")
    unknown = sorted(set(recorded) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"{shipped.name}: the file's recipe has fields {cls.__name__} does not "
                         f"know: {unknown}")  # fmt: skip
    return cls(**recorded)


def load(name: str, device: str | torch.device = "cpu", path: str | Path | None = None):
    """The shipped model ``name``, trained, in eval mode, on ``device``.

    A fresh copy on every call (change it freely); ``path`` reads another file of the same
    kind, e.g. one written by ``build(name, out=..., recipe=...)``. The network is built from the
    recipe the file records, so a candidate trained with another architecture loads too.
    """
    shipped = entry(name)
    state = _read(shipped, path)
    model = recorded_recipe(shipped, state).build()
    model.load_state_dict(state["model"])
    return model.to(device).eval()


def build(
    name: str, out: str | Path | None = None, recipe: object = None, progress: bool = True
) -> tuple[nn.Module, dict]:
    """Retrain ``name`` with its recipe (or ``recipe``, e.g. a shortened copy for a test) on the
    CPU, measure its headline metric, and write it atomically to ``out`` (default: the shipped
    file). Returns ``(model, meta)``."""
    shipped = entry(name)
    recipe = shipped.recipe if recipe is None else recipe
    if type(recipe) is not type(shipped.recipe):
        raise TypeError(
            f"{name}'s recipe is a {type(shipped.recipe).__name__}, got {type(recipe).__name__}"
        )
    start = time.perf_counter()
    model, extra = shipped.train(recipe, progress)
    seconds = time.perf_counter() - start
    model = model.cpu().eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if shipped.half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        model.load_state_dict(state)  # measure what is shipped: the rounded weights
    info = {
        "name": name,
        "recipe": dataclasses.asdict(recipe),
        "metric": shipped.metric,
        "value": float(shipped.evaluate(model)),
        "train_seconds": round(seconds, 1),
        "torch": str(torch.__version__),
        **extra,
    }
    save_checkpoint(shipped.path if out is None else out, {"model": state, "meta": info})
    return model, info


def check(names_: list[str] | None = None, verbose: bool = True) -> list[str]:
    """Reload every shipped file with ``weights_only=True``, recompute its headline metric and
    check the sizes. Returns the list of problems (empty when all is well)."""
    problems, total = [], 0.0
    for name in names_ or names():
        shipped = entry(name)
        try:
            state = _read(shipped)
        except Exception as err:  # missing, or refused by weights_only
            problems.append(f"{name}: {err}")
            continue
        size = shipped.path.stat().st_size / 2**20
        total += size
        recorded = float(state["meta"]["value"])
        model = load(name)
        now = float(shipped.evaluate(model))
        worse = shipped.worse_by(recorded, now)
        status = "ok" if worse <= shipped.tolerance and size <= MAX_FILE_MB else "FAIL"
        if verbose:
            print(
                f"{status:4s} {name:10s} {size:5.2f} MB  {shipped.metric} {now:.4g} "
                f"(recorded {recorded:.4g}, tolerance {shipped.tolerance:g})"
            )
        if worse > shipped.tolerance:
            problems.append(
                f"{name}: {shipped.metric} is {now:.4g}, worse than the recorded {recorded:.4g} "
                f"by more than {shipped.tolerance:g}"
            )
        if size > MAX_FILE_MB:
            problems.append(f"{name}: {size:.2f} MB is over the {MAX_FILE_MB:g} MB limit")
    if total > MAX_TOTAL_MB:
        problems.append(f"all shipped weights: {total:.1f} MB is over {MAX_TOTAL_MB:g} MB")
    return problems


def describe(name: str) -> str:
    """One block of text per checkpoint, for ``python -m course_lib.weights list``."""
    shipped = entry(name)
    if not shipped.path.is_file():
        return f"{name}: missing; build it with `python -m course_lib.weights build {name}`"
    info = meta(name)
    recipe = ", ".join(f"{k}={v}" for k, v in info["recipe"].items())
    size = shipped.path.stat().st_size / 2**20
    return (
        f"{name}: {shipped.description}\n"
        f"  file      {shipped.path.name}, {size:.2f} MB\n"
        f"  trained   {info['train_seconds']} s on the CPU (torch {info['torch']})\n"
        f"  recipe    {type(shipped.recipe).__name__}({recipe})\n"
        f"  metric    {info['metric']} = {info['value']:.4g} on held-out data"
    )
