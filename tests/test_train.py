"""The shared training loop: history, evaluation, atomic checkpoints, exact resume, Ctrl-C;
EMA, gradient clipping, ``steps=`` and ``max_seconds=``."""

from __future__ import annotations

import os
import signal
import time

import pytest
import torch
from torch import nn

from course_lib import seed_everything
from course_lib.classifier import evaluate_classifier, supervised_step
from course_lib.train import EMA, History, load_checkpoint, save_checkpoint, train


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


def _run(tmp_path=None, epochs=3, interrupt_at=None, ema_decay=None, progress=False, **kwargs):
    """Train ``_model()`` on ``_problem()``; returns ``(model, history, ema or None)``."""
    seed_everything(0)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ema = None if ema_decay is None else EMA(model, decay=ema_decay)
    base = supervised_step(model, opt)
    calls = {"n": 0}

    def step(batch):
        calls["n"] += 1
        if interrupt_at is not None and calls["n"] == interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # as if the learner pressed Ctrl-C here
        return base(batch)

    x, y = _problem()
    ck = None if tmp_path is None else tmp_path / "ck.pt"
    model, hist = train(
        model,
        step,
        (x, y),
        batch_size=16,
        epochs=epochs,
        optimizers=opt,
        ema=ema,
        checkpoint=ck,
        device="cpu",
        progress=progress,
        **kwargs,
    )
    return model, hist, ema


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
    assert hist.stopped == "done" and not hist.interrupted and model.training
    assert hist.seconds > 0 and "grad_norm" not in hist.steps[0]
    with pytest.raises(KeyError, match="logged keys"):
        hist.series("nope")


def test_evaluate_runs_in_eval_mode_and_a_failing_one_leaves_the_model_in_train_mode():
    x, y = _problem(32)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []

    def evaluate():
        seen.append((model.training, model[3].training, torch.is_grad_enabled()))
        if len(seen) == 2:
            raise RuntimeError("evaluation failed")
        return {"n": len(seen)}

    with pytest.raises(RuntimeError, match="evaluation failed"):
        train(model, supervised_step(model, opt), (x, y), batch_size=16, epochs=3,
              evaluate=evaluate, device="cpu", progress=False)  # fmt: skip
    assert seen == [(False, False, False)] * 2, f"evaluate saw (training, dropout, grad) {seen}"
    modes = [m.training for m in model.modules()]
    assert all(modes), f"after a failed evaluation every module should train again: {modes}"


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
    assert hist.interrupted and hist.stopped == "interrupted" and len(hist.steps) == 3
    assert isinstance(model, nn.Module)
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
    ema = EMA(nets["g"], decay=0.9)  # the generator's average only, as GANs sample with it
    _, hist = train(
        nets,
        step,
        data,
        batch_size=16,
        epochs=2,
        optimizers=opts,
        ema=ema,
        clip_grad_norm=10.0,
        checkpoint=tmp_path / "gan.pt",
        device="cpu",
        progress=False,
    )
    assert {"d_loss", "g_loss", "grad_norm_g", "grad_norm_d"} <= set(hist.steps[0])
    state = load_checkpoint(tmp_path / "gan.pt")
    assert set(state["optimizers"]) == {"g", "d"} and state["epoch"] == 2
    assert ema.updates == state["ema"]["updates"] == 8
    assert not torch.equal(ema.module.weight, nets["g"].weight)  # an average, not a copy


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 1000}, ValueError, "batch_size"),
        ({"epochs": -1}, ValueError, "epochs"),
        ({"epochs": None}, ValueError, "exactly one of epochs= .* or steps="),
        ({"steps": 5}, ValueError, "exactly one of epochs= .* or steps="),
        ({"epochs": None, "steps": -1}, ValueError, "steps must be an int >= 0"),
        ({"epochs": None, "steps": 2.5}, ValueError, "steps must be an int >= 0"),
        ({"clip_grad_norm": 0}, ValueError, "clip_grad_norm must be a number > 0"),
        ({"clip_grad_norm": 1.0}, ValueError, "clip_grad_norm needs the optimizers="),
        ({"max_seconds": -1}, ValueError, "max_seconds must be a number > 0"),
        ({"max_seconds": "1 min"}, ValueError, "max_seconds must be a number > 0"),
        ({"ema": "ema"}, TypeError, "ema must be an EMA"),
        ({"ema": EMA(nn.Linear(2, 2))}, ValueError, "not part of model"),
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


# ----------------------------------------------------------------------------- EMA


def test_ema_averages_the_parameters_copies_the_buffers_and_stays_frozen():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    ema, warm = EMA(net, decay=0.75, warmup=False), EMA(net, decay=0.999)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    before = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    net(torch.randn(8, 3))  # train mode: updates BatchNorm's running statistics
    ema.update()
    warm.update()  # the first warm-up decay is min(0.999, 1 / 10) = 0.1
    for old, new, a, b in zip(before, net.parameters(), ema.module.parameters(),
                              warm.module.parameters(), strict=True):  # fmt: skip
        torch.testing.assert_close(a, 0.75 * old + 0.25 * new)
        torch.testing.assert_close(b, 0.1 * old + 0.9 * new)
    for shadow, buffer in zip(ema.module.buffers(), net.buffers(), strict=True):
        assert torch.equal(shadow, buffer)
    assert net[1].running_mean.abs().sum() > 0, "the buffers did not change: a vacuous check"
    copy = EMA(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), decay=0.75, warmup=False)
    copy.load_state_dict(ema.state_dict())
    assert copy.updates == 1 and torch.equal(_weights(copy.module), _weights(ema.module))
    with pytest.raises(ValueError, match=r"decay must be a number in \[0, 1\)"):
        EMA(net, decay=1.0)
    with pytest.raises(TypeError, match="nn.Module"):
        EMA(net.parameters())


def test_resume_with_ema_ends_in_the_same_weights_and_the_same_average(tmp_path):
    reference, _, ref_ema = _run(epochs=3, ema_decay=0.9)
    _, hist1, _ = _run(tmp_path, epochs=3, interrupt_at=8, ema_decay=0.9)  # a real SIGINT
    assert hist1.interrupted and len(hist1.steps) == 8
    resumed, hist2, ema = _run(tmp_path, epochs=3, ema_decay=0.9)
    assert len(hist2.steps) == 18 and ema.updates == ref_ema.updates == 18
    for name, a, b in [("model", resumed, reference), ("EMA", ema.module, ref_ema.module)]:
        diff = (_weights(a) - _weights(b)).abs().max().item()
        assert diff == 0.0, f"resumed {name} differs from the uninterrupted one by {diff:.3g}"
    assert not torch.equal(_weights(ema.module), _weights(resumed)), "the EMA is not an average"
    assert load_checkpoint(tmp_path / "ck.pt")["ema"]["updates"] == 18


# ----------------------------------------------------------------------------- clipping


def test_clip_grad_norm_rescales_the_gradients_before_each_update_and_logs_the_norm():
    x, y = torch.randn(8, 3, generator=torch.Generator().manual_seed(0)), torch.ones(8, 2)

    def fresh():
        model = nn.Linear(3, 2)
        with torch.no_grad():
            model.weight.copy_(torch.arange(6.0).view(2, 3) / 6)
            model.bias.fill_(-1.0)
        return model

    def run(step_fails=False, **kwargs):
        model = fresh()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=100)  # not clipped, no hook

        def step(batch):
            loss = nn.functional.mse_loss(model(batch[0]), batch[1])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step_fails:
                raise RuntimeError("step failed")
            return {"loss": loss}

        model, hist = train(model, step, (x, y), batch_size=8, steps=1, device="cpu",
                            optimizers={"sgd": opt, "schedule": sched}, progress=False,
                            **kwargs)  # fmt: skip
        assert not opt._optimizer_step_pre_hooks, "the clipping hook was left behind"
        return model, hist

    by_hand = fresh()  # the same update, with the gradients rescaled by hand
    nn.functional.mse_loss(by_hand(x), y).backward()
    norm = torch.cat([p.grad.flatten() for p in by_hand.parameters()]).norm()
    expected = [p - 0.1 * p.grad * 0.01 / (norm + 1e-6) for p in by_hand.parameters()]
    assert norm > 1, "the gradient is not larger than the clipping norm: a vacuous test"

    clipped, hist = run(clip_grad_norm=0.01)
    for p, e in zip(clipped.parameters(), expected, strict=True):
        torch.testing.assert_close(p, e.detach())
    assert hist.steps[0]["grad_norm"] == pytest.approx(norm.item(), rel=1e-5)  # before clipping
    plain, plain_hist = run()
    huge, huge_hist = run(clip_grad_norm=1e9)
    assert "grad_norm" not in plain_hist.steps[0] and "grad_norm" in huge_hist.steps[0]
    assert torch.equal(_weights(huge), _weights(plain)), "clipping changed an unclipped update"
    with pytest.raises(RuntimeError, match="step failed"):
        run(step_fails=True, clip_grad_norm=0.01)  # the hook is removed after errors too


# ----------------------------------------------------------------------------- steps=


def test_steps_follow_the_same_data_order_as_epochs(capsys):
    by_epochs, _, _ = _run(epochs=2)
    by_steps, hist12, _ = _run(epochs=None, steps=12)  # 2 epochs of 96 // 16 = 6 steps
    assert torch.equal(_weights(by_steps), _weights(by_epochs))
    assert len(hist12.steps) == 12 and len(hist12.epochs) == 2
    _, hist10, _ = _run(epochs=None, steps=10, progress=True)  # the second epoch is partial
    assert len(hist10.steps) == 10 and hist10.stopped == "done"
    assert len(hist10.epochs) == 1 and hist10.steps[-1]["epoch"] == 1
    assert [r["loss"] for r in hist10.steps] == [r["loss"] for r in hist12.steps[:10]]
    assert "10/10" in capsys.readouterr().err  # the progress bar counts steps


def test_resume_in_the_middle_of_a_steps_run(tmp_path):
    reference, _, _ = _run(epochs=None, steps=20)
    _, hist1, _ = _run(tmp_path, epochs=None, steps=20, interrupt_at=8)
    assert hist1.interrupted and len(hist1.steps) == 8
    resumed, hist2, _ = _run(tmp_path, epochs=None, steps=20)
    assert len(hist2.steps) == 20 and hist2.stopped == "done"
    diff = (_weights(resumed) - _weights(reference)).abs().max().item()
    assert diff == 0.0, f"resumed run differs from the uninterrupted one by {diff:.3g}"
    state = load_checkpoint(tmp_path / "ck.pt")  # saved at the end, inside the 4th epoch
    assert (state["epoch"], state["step_in_epoch"]) == (3, 2)


# ----------------------------------------------------------------------------- max_seconds


def test_max_seconds_stops_after_the_budget_and_a_resumed_run_gets_the_rest(tmp_path, capsys):
    def run(budget):
        def step(batch):
            time.sleep(0.05)
            return {"loss": 0.0}

        _, hist = train(nn.Linear(1, 1), step, torch.zeros(1000, 1), batch_size=1, steps=1000,
                        max_seconds=budget, checkpoint=tmp_path / "ck.pt", device="cpu",
                        progress=False)  # fmt: skip
        return hist

    hist = run(0.3)  # about 6 steps of 0.05 s, far fewer than the 1000 asked for
    assert hist.stopped == "max_seconds" and not hist.interrupted
    assert 1 <= len(hist.steps) <= 8 and hist.seconds >= 0.3
    assert "max_seconds=0.3 reached" in capsys.readouterr().out
    saved = load_checkpoint(tmp_path / "ck.pt")["history"]
    assert len(saved["steps"]) == len(hist.steps) and saved["seconds"] >= 0.3
    more = run(1.0)  # the budget counts the time of the first run too: about 20 steps in all
    assert more.stopped == "max_seconds" and len(hist.steps) < len(more.steps) <= 22
    assert more.seconds >= 1.0


def test_a_checkpoint_is_readable_as_any_file_the_user_writes(tmp_path):
    """mkstemp makes its file 0600; the checkpoint gets the usual permissions (0666 - umask)."""
    umask = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "model.pt", {"w": torch.ones(1)})
    finally:
        os.umask(umask)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
