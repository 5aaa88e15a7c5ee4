"""The shared training loop: history, evaluation, atomic checkpoints, exact resume, Ctrl-C."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch import nn

from course_lib import seed_everything
from course_lib.train import (
    History,
    evaluate_classifier,
    load_checkpoint,
    save_checkpoint,
    supervised_step,
    train,
)


def _problem(n: int = 96):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long() + 2 * (x[:, 0, 0, 0] > 0.5).long()
    return x, y


def _model():
    # dropout makes the step use the global RNG, which resume must restore
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 4)
    )


def _run(tmp_path=None, epochs=3, interrupt_at=None, name="ck.pt", **kwargs):
    seed_everything(0)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    base = supervised_step(model, opt)
    calls = {"n": 0}

    def step(batch):
        calls["n"] += 1
        if interrupt_at is not None and calls["n"] == interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # as if the learner pressed Ctrl-C here
        return base(batch)

    x, y = _problem()
    ck = None if tmp_path is None else tmp_path / name
    model, hist = train(
        model,
        step,
        (x, y),
        batch_size=16,
        epochs=epochs,
        optimizers=opt,
        checkpoint=ck,
        device="cpu",
        progress=False,
        **kwargs,
    )
    return model, hist, opt


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values()])


def test_history_has_every_step_and_epoch_and_the_loss_falls():
    x, y = _problem()
    seed_everything(0)
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model, hist = train(
        model,
        supervised_step(model, opt),
        (x, y),
        batch_size=16,
        epochs=4,
        optimizers=opt,
        evaluate=lambda: evaluate_classifier(model, x, y),
        device="cpu",
        progress=False,
    )
    assert len(hist.steps) == 4 * 6 and len(hist.epochs) == 4
    assert [r["step"] for r in hist.steps] == list(range(24))
    assert {"loss", "accuracy", "eval_loss", "eval_accuracy", "epoch"} <= set(hist.epochs[-1])
    losses = hist.series("eval_loss", per="epoch")
    assert losses[-1] < losses[0], f"eval loss did not fall: {losses}"
    assert not hist.interrupted and model.training
    with pytest.raises(KeyError, match="logged keys"):
        hist.series("nope")


def test_resume_from_checkpoint_ends_in_the_same_weights(tmp_path):
    reference, ref_hist, _ = _run(epochs=3)
    # first run: Ctrl-C in the middle of epoch 2 (step 8 of 18); it stops after that step
    partial, hist1, _ = _run(tmp_path, epochs=3, interrupt_at=8)
    assert hist1.interrupted and len(hist1.steps) == 8
    assert not torch.equal(_weights(partial), _weights(reference))
    # second run: same call, resumes from the checkpoint and finishes
    resumed, hist2, _ = _run(tmp_path, epochs=3)
    assert len(hist2.steps) == 18 and not hist2.interrupted
    diff = (_weights(resumed) - _weights(reference)).abs().max().item()
    assert diff == 0.0, f"resumed run differs from the uninterrupted one by {diff:.3g}"
    assert [r["loss"] for r in hist2.steps] == [r["loss"] for r in ref_hist.steps]


def test_resume_across_an_epoch_boundary_and_more_epochs(tmp_path):
    reference, _, _ = _run(epochs=4)
    _run(tmp_path, epochs=2)  # finish 2 epochs, then ask for 4 in total
    resumed, hist, _ = _run(tmp_path, epochs=4)
    assert len(hist.epochs) == 4
    assert torch.equal(_weights(resumed), _weights(reference))


def test_ctrl_c_returns_model_and_history_so_far(tmp_path, capsys):
    model, hist, _ = _run(tmp_path, epochs=3, interrupt_at=3)
    assert hist.interrupted and len(hist.steps) == 3 and isinstance(model, nn.Module)
    assert "Stopped early after 3 steps" in capsys.readouterr().out
    state = load_checkpoint(tmp_path / "ck.pt")
    assert state["step_in_epoch"] == 3 and len(state["history"]["steps"]) == 3


def test_keyboard_interrupt_raised_inside_the_step_also_keeps_the_model():
    x, y = _problem()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    base = supervised_step(model, opt)
    count = {"n": 0}

    def step(batch):
        count["n"] += 1
        if count["n"] == 5:
            raise KeyboardInterrupt
        return base(batch)

    model, hist = train(
        model, step, (x, y), batch_size=16, epochs=2, optimizers=opt, device="cpu", progress=False
    )
    assert hist.interrupted and len(hist.steps) == 4


def test_checkpoints_are_atomic_and_loaded_with_weights_only(tmp_path):
    path = tmp_path / "sub" / "a.pt"
    save_checkpoint(path, {"w": torch.ones(3), "meta": {"n": 1}})
    assert load_checkpoint(path)["meta"] == {"n": 1}
    assert [p.name for p in path.parent.iterdir()] == ["a.pt"], "temporary file left behind"

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint(path, {"w": torch.zeros(3), "bad": Unpicklable()})
    assert torch.equal(load_checkpoint(path)["w"], torch.ones(3)), "a failed save damaged the file"
    assert [p.name for p in path.parent.iterdir()] == ["a.pt"]


def test_weights_only_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"obj": History()}, path)  # a pickled class instance
    with pytest.raises(Exception, match="(?i)weights_only|unsupported"):
        load_checkpoint(path)


def test_gan_style_step_with_two_optimizers_fits_the_loop(tmp_path):
    """Alternating updates of two networks, both optimisers checkpointed and restored."""
    seed_everything(0)
    nets = nn.ModuleDict({"g": nn.Linear(2, 4), "d": nn.Linear(4, 1)})
    opts = {
        "g": torch.optim.Adam(nets["g"].parameters()),
        "d": torch.optim.Adam(nets["d"].parameters()),
    }
    bce = nn.functional.binary_cross_entropy_with_logits

    def step(batch):
        (real,) = batch
        fake = nets["g"](torch.randn(len(real), 2))
        d_loss = bce(nets["d"](real), torch.ones(len(real), 1)) + bce(
            nets["d"](fake.detach()), torch.zeros(len(real), 1)
        )
        opts["d"].zero_grad()
        d_loss.backward()
        opts["d"].step()
        g_loss = bce(nets["d"](fake), torch.ones(len(real), 1))
        opts["g"].zero_grad()
        g_loss.backward()
        opts["g"].step()
        return {"d_loss": d_loss, "g_loss": g_loss}

    data = torch.randn(64, 4) + 3
    _, hist = train(
        nets,
        step,
        data,
        batch_size=16,
        epochs=2,
        optimizers=opts,
        checkpoint=tmp_path / "gan.pt",
        device="cpu",
        progress=False,
    )
    assert {"d_loss", "g_loss"} <= set(hist.steps[0])
    state = load_checkpoint(tmp_path / "gan.pt")
    assert set(state["optimizers"]) == {"g", "d"} and state["epoch"] == 2


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 1000}, ValueError, "batch_size"),
        ({"epochs": -1}, ValueError, "epochs"),
        ({"optimizers": "adam"}, TypeError, "Optimizer"),
        ({"data": [1, 2]}, TypeError, "tensor"),
        ({"data": (torch.zeros(4), torch.zeros(5))}, ValueError, "same length"),
    ],
)
def test_bad_arguments_say_what_to_fix(kwargs, error, words):
    x, y = _problem()
    model = _model()
    args = {"data": (x, y), "batch_size": 16, "epochs": 1, **kwargs}
    data = args.pop("data")
    with pytest.raises(error, match=words):
        train(model, lambda b: {}, data, device="cpu", progress=False, **args)


def test_step_must_return_a_dict():
    x, y = _problem()
    with pytest.raises(TypeError, match="dict of numbers"):
        train(
            _model(), lambda b: 1.0, (x, y), batch_size=16, epochs=1, device="cpu", progress=False
        )


def test_a_learning_rate_schedule_is_checkpointed_and_resumed(tmp_path):
    def run(epochs, ck=None):
        seed_everything(0)
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.3, total_steps=4 * 6)
        step = supervised_step(model, opt, scheduler=sched)
        model, _ = train(model, step, _problem(), batch_size=16, epochs=epochs,
                         optimizers={"sgd": opt, "schedule": sched}, checkpoint=ck,
                         device="cpu", progress=False)  # fmt: skip
        return model, sched

    reference, ref_sched = run(4)
    run(2, tmp_path / "ck.pt")
    resumed, sched = run(4, tmp_path / "ck.pt")
    assert sched.last_epoch == ref_sched.last_epoch == 24
    assert torch.equal(_weights(resumed), _weights(reference))
