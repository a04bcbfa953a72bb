"""The "no meta-learning" baseline: joint supervised training over all meta-training classes.

The same CNN as Reptile's (training/model.py, one group, G = 1) gets a head with one output per
meta-training class (Omniglot: 1,200 characters x 4 rotations = 4,800 classes, all 20 drawings
each) and is trained by ordinary mini-batch Adam (torch.optim.Adam, default betas) on the mean
cross-entropy. Mini-batches are drawn uniformly, with replacement, from all training images
(class and drawing; every image equally likely), from the run's numpy RNG. BatchNorm uses batch
statistics, as everywhere else in this project. The learning rate is constant.

At test time nothing changes from Reptile's evaluation: every checkpoint stores the trained body
with the head REPLACED by a fresh `config.ways`-way head, no Adam state (v = 0, t = 0) and
`algorithm: "joint"`, so `python -m training evaluate --checkpoint ... --adam-state reset`
fine-tunes it exactly as it fine-tunes a Reptile initialization (with v = 0 and t = 0, `carry`
and `reset` are the same thing).

The fresh head is Glorot-uniform with zero bias, from `init_params` with the run's seed: the
very head a Reptile run with the same seed and preset starts from, and the ordinary "new
randomly initialised output layer" of transfer learning. The alternative, an all-zero head, makes
every initial prediction uniform, but it also zeroes the gradient that reaches the body on the
first fine-tuning step (d loss / d features = W^T (p - y) = 0), so the first step would move
only the head; with the Glorot head, body and head adapt from the first step, as they do when
Reptile's initialization is fine-tuned.

Resuming: the checkpoint also holds, under "joint", the full 4,800-way parameters and the Adam
state; with the numpy RNG state (in the standard fields) a resumed run continues bit for bit.
"""

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import save_checkpoint
from .data import load_task_data
from .model import ModelSpec, forward, init_params
from .presets import OPERATIONAL_FIELDS, Config
from .reptile import MetaState
from .run_folder import RunFolder, Stopwatch, due, last_step, machine, progress_bar
from .tasks import to_tensor
from .train import live_eval, model_spec

# Defaults, chosen for CPU time rather than parity: 20,000 steps x 64 images = 1.28 M example
# gradients, about 13 passes over the 96,000 training images (4,800 classes x 20 drawings). On the
# 2-core development machine, with one thread and a meta-training run beside it, a step of the
# 64-filter model takes ~73 ms: ~25 min of training plus ~4 live estimates of ~1.5-2 min each.
# A 100,000-iteration omniglot-5w5s Reptile run computes 100,000 x 5 tasks x 5 steps x 10 = 25 M
# example gradients, ~20x as many; matching that would take ~8 h here. Batch 64 (not larger):
# on this CPU the cost per example hardly falls beyond 64, so smaller batches buy more updates.
DEFAULT_STEPS = 20_000
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR = 1e-3  # Adam's usual step size; constant, no schedule
DEFAULT_EVAL_INTERVAL = 5_000  # each live estimate fine-tunes 2 x eval_tasks tasks: ~1.5-2 min here
DEFAULT_CHECKPOINT_INTERVAL = 1_000
LOG_INTERVAL = 100


def evaluation_state(config: Config, params: list) -> MetaState:
    """The joint model's body with a fresh config.ways-way head (Glorot weights, zero bias, from
    the run seed), and an empty Adam state: what Reptile's evaluation starts from."""
    head = init_params(model_spec(config), torch.Generator().manual_seed(config.seed))[-2:]
    body = [p.detach().cpu().clone() for p in params[:-2]]
    return MetaState.fresh(body + head)


def _kept_on_resume(config: Config, joint_settings: dict) -> dict:
    """The settings a resumed run may not change; joint training's are prefixed ("lr" is in both)."""
    kept = {k: v for k, v in config.to_dict().items() if k not in OPERATIONAL_FIELDS}
    return kept | {f"joint {k}": v for k, v in joint_settings.items()}


def train_joint(
    config: Config,
    out_dir: Path,
    data_dir=None,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    resume: bool = False,
    command: str = "",
    progress: bool = True,
    stop_after: int | None = None,
    eval_interval: int = DEFAULT_EVAL_INTERVAL,
    checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
    log_interval: int = LOG_INTERVAL,
) -> MetaState:
    """Jointly train into out_dir; returns the evaluation state (body + fresh ways-way head).

    config: the preset whose evaluation settings (ways, shots, eval_*, its lr for fine-tuning,
    seed, filters, eval_tasks) the baseline is compared under; the checkpoint's copy of it has
    algorithm "joint" and this run's eval/checkpoint intervals (counted in steps).
    lr: joint training's Adam step size. stop_after ends early (after that many steps in total)
    as if the process were killed there; resume=True continues from the checkpoint.
    metrics.jsonl: every log_interval steps the mean loss and accuracy on the training batches
    since the previous row; every eval_interval steps (and at the end) few-shot accuracy after
    fine-tuning on eval_tasks tasks of training and of held-out characters (as train.py)."""
    folder = RunFolder(out_dir)
    config = config.updated(algorithm="joint", eval_interval=eval_interval, checkpoint_interval=checkpoint_interval)
    spec = model_spec(config)
    settings = {
        "batch_size": batch_size,
        "lr": lr,
        "log_interval": log_interval,
        "optimizer": "Adam",
        "sampling": "uniform over all training images, with replacement",
    }
    payload = folder.saved_checkpoint(resume)
    if payload is not None:
        if "joint" not in payload:
            raise ValueError(f"--resume: {folder.checkpoint} is not a joint-training (baseline) checkpoint")
        folder.check_same_settings(
            _kept_on_resume(Config.from_dict(payload["config"]), payload["joint"]["settings"]),
            _kept_on_resume(config, settings),
        )

    data = load_task_data(config.dataset, data_dir, config.seed)
    train_images = data.meta_train.images  # uint8 [classes, drawings, C, H, W]
    num_classes, drawings = train_images.shape[:2]
    flat_images = train_images.reshape(num_classes * drawings, *train_images.shape[2:])
    joint_spec = ModelSpec(**{**spec.to_dict(), "ways": num_classes})

    if payload is not None:
        joint = payload["joint"]
        if joint["spec"] != joint_spec.to_dict():
            raise ValueError(f"--resume: {folder.checkpoint} was trained on a different set of classes")
        params = [p.clone().requires_grad_() for p in joint["params"]]
        optimizer = torch.optim.Adam(params, lr=lr)
        optimizer.load_state_dict(joint["optimizer"])
        rng = np.random.default_rng()
        rng.bit_generator.state = payload["rng"]
        start, elapsed = payload["iteration"], payload["elapsed_s"]
        loss_sum, correct, seen = joint["window"]
    else:
        params = [p.requires_grad_() for p in init_params(joint_spec, torch.Generator().manual_seed(config.seed))]
        optimizer = torch.optim.Adam(params, lr=lr)
        rng = np.random.default_rng(config.seed)
        start, elapsed = 0, 0.0
        loss_sum, correct, seen = 0.0, 0, 0

    run = {
        "config": config.to_dict(),
        "model": spec.to_dict(),
        "joint_model": joint_spec.to_dict(),
        "baseline": {"steps": steps, **settings, "images": int(flat_images.shape[0])},
        "command": command,
        "device": "cpu",
        "processes": 1,
        **machine(),
        **data.provenance,
    }
    folder.begin(start, "step", run, data.test_classes)

    end = last_step(steps, stop_after)
    elapsed_s = Stopwatch(elapsed)

    def checkpoint(done: int) -> None:
        """The evaluation state after `done` steps, and all that a resumed run needs."""
        save_checkpoint(
            folder.checkpoint,
            config=config.to_dict(),
            spec=spec.to_dict(),
            state=evaluation_state(config, params),
            iteration=done,
            rng=rng,
            elapsed_s=elapsed_s(),
            extra={
                "joint": {
                    "settings": settings,
                    "spec": joint_spec.to_dict(),
                    "params": [p.detach().clone() for p in params],
                    "optimizer": optimizer.state_dict(),
                    "window": (loss_sum, correct, seen),
                }
            },
        )

    bar = progress_bar(steps, start, "joint-train", "step") if progress else None
    with folder.metrics_log() as metrics:
        for step in range(start, end):
            index = rng.integers(0, flat_images.shape[0], batch_size)
            images = to_tensor(flat_images[index])[None]
            labels = torch.from_numpy(index // drawings)
            logits = forward(joint_spec, [p[None] for p in params], images)[0]
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * batch_size
            correct += int((logits.detach().argmax(-1) == labels).sum())
            seen += batch_size
            done = step + 1
            row = None
            if due(done, log_interval, steps):
                row = {
                    "step": done,
                    "loss": loss_sum / seen,
                    "batch_accuracy": correct / seen,
                    "elapsed_s": elapsed_s(),
                }
                loss_sum, correct, seen = 0.0, 0, 0
                if bar:
                    bar.set_postfix(loss=f"{row['loss']:.3f}")
            if due(done, config.eval_interval, steps):
                row = (row or {"step": done}) | live_eval(spec, config, evaluation_state(config, params), data, done)
                if bar:
                    bar.set_postfix(
                        loss=f"{row.get('loss', float('nan')):.3f}",
                        train=f"{row['train_accuracy']:.3f}",
                        test=f"{row['test_accuracy']:.3f}",
                    )
            if row:
                metrics.write(row)
            if bar:
                bar.update(1)
            if due(done, config.checkpoint_interval, end):
                checkpoint(done)
    if start == end == 0:  # a 0-step run: its checkpoint is the start itself
        checkpoint(0)
    if bar:
        bar.close()
    return evaluation_state(config, params)
