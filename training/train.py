"""The meta-training run: resumable, checkpointed, logged as JSON lines, single or multi-process."""

import os
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .checkpoint import restore_rng, save_checkpoint, state_from_checkpoint
from .cuda_graph import GraphedMetaStep
from .data import load_task_data
from .evaluate import evaluate
from .model import PRESET_MODELS, ModelSpec, init_params
from .presets import Config
from .reptile import ALGORITHMS, INNER_OPTIMIZERS, MetaState, make_inner_optimizer, meta_step, per_task_meta_step
from .run_folder import RunFolder, Stopwatch, due, last_step, machine, progress_bar
from .tasks import flatten_task, minibatch_order, to_tensor

LOG_INTERVAL = 100  # meta-iterations per metrics row


def model_spec(config: Config) -> ModelSpec:
    """The network a config trains: its dataset's architecture with the config's ways and filters."""
    base = dict(PRESET_MODELS[config.dataset])
    base["filters"] = config.filters
    return ModelSpec(ways=config.ways, **base)


def meta_step_size(config: Config, iteration: int) -> float:
    """Linear annealing from meta_step to meta_step_final, as the reference (frac_done = i / iters)."""
    done = iteration / config.meta_iters
    return done * config.meta_step_final + (1 - done) * config.meta_step


def check_algorithm(config: Config) -> None:
    """Refuse, naming the flag, an algorithm or sampling setting the meta-iteration cannot run."""
    if config.algorithm not in ALGORITHMS:
        raise ValueError(f"--algorithm {config.algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    if config.inner_optimizer not in INNER_OPTIMIZERS:
        raise ValueError(f"--inner-optimizer {config.inner_optimizer!r}: expected one of {', '.join(INNER_OPTIMIZERS)}")
    if config.final_batch not in ("shared", "separate"):
        raise ValueError(f"--final-batch {config.final_batch!r}: expected shared or separate")
    if config.final_batch == "separate":
        if config.algorithm == "reptile":
            raise ValueError("--final-batch separate applies to --algorithm fomaml and maml: Reptile has none")
        examples = config.ways * config.train_shots
        if examples <= config.inner_batch:
            raise ValueError(
                f"--final-batch separate sets aside --inner-batch {config.inner_batch} of a task's {examples} "
                "examples (--ways x --train-shots) and needs some left for the inner loop"
            )
    if config.replacement:
        _check_draws(config)


def _check_draws(config: Config) -> None:
    """With --replacement every mini-batch is distinct examples: it must fit in what it is drawn from."""
    pool = config.ways * config.train_shots - (config.inner_batch if config.final_batch == "separate" else 0)
    if config.inner_batch > pool:
        raise ValueError(
            f"--replacement draws each mini-batch of --inner-batch {config.inner_batch} distinct examples from the "
            f"task's {pool} (--ways x --train-shots, less a separate final batch)"
        )
    support = config.ways * config.shots
    if config.eval_batch > support:
        raise ValueError(
            f"--replacement draws each evaluation mini-batch of --eval-batch {config.eval_batch} distinct examples "
            f"from the {support} of a task's support set (--ways x --shots)"
        )


def init_distributed(device: str) -> tuple:
    """(rank, world size, device) under torchrun (gloo on CPU, nccl with one GPU per rank), else (0, 1, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda" and local_rank >= torch.cuda.device_count():
        # nccl refuses two ranks on one GPU (since NCCL 2.5), so say so before it fails obscurely
        raise ValueError(
            f"--device cuda under torchrun needs one GPU per process: process {local_rank} of this "
            f"machine has none (it has {torch.cuda.device_count()}); use --nproc-per-node "
            f"{max(torch.cuda.device_count(), 1)} or fewer"
        )
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    return dist.get_rank(), dist.get_world_size(), device


def live_eval(spec, config, state, data, iteration) -> dict:
    """A quick estimate on fresh tasks; its own RNG, derived from the iteration, so a resumed run
    logs the same numbers and training's random stream is untouched."""
    result = {}
    for name, sampler in (("train", data.train_eval), ("test", data.test)):
        rng = np.random.default_rng([config.seed, 1, iteration])
        r = evaluate(
            spec,
            state,
            sampler,
            rng,
            ways=config.ways,
            shots=config.shots,
            inner_batch=config.eval_batch,
            inner_iters=config.eval_iters,
            lr=config.lr,
            tasks=config.eval_tasks,
            transductive=config.transductive,
            use_adam_state=config.carry_adam_state,
            inner_optimizer=config.inner_optimizer,
            replacement=config.replacement,
        )
        result[f"{name}_accuracy"] = r.accuracy
    return result


def train(
    config: Config,
    out_dir: Path,
    data_dir=None,
    device: str = "cpu",
    resume: bool = False,
    command: str = "",
    progress: bool = True,
    stop_after: int | None = None,
    cuda_graph: bool = True,
) -> MetaState:
    """Meta-train into out_dir. stop_after ends the process early (after that many iterations in
    total) as if it were killed; the checkpoint lets a later call with resume=True go on.
    cuda_graph: on a GPU, replay the batched inner loop as a CUDA graph (training/cuda_graph.py)."""
    check_algorithm(config)
    rank, world, device = init_distributed(device)
    # MAML's differentiable inner loop is not captured: it runs eagerly on a GPU
    cuda_graph = cuda_graph and config.batched and device.startswith("cuda") and config.algorithm != "maml"
    if config.meta_batch % world:
        raise ValueError(f"--meta-batch {config.meta_batch} must be divisible by the number of processes ({world})")
    if config.sequential_adam_state and (config.batched or not config.carry_adam_state):
        raise ValueError("--sequential-adam-state needs --inner-loop per-task and --adam-state carry")
    if world > 1 and not config.batched:
        raise ValueError("--inner-loop per-task runs in a single process only")
    folder = RunFolder(out_dir)
    spec = model_spec(config)
    data = load_task_data(config.dataset, data_dir, config.seed)

    payload = folder.saved_checkpoint(resume)
    if payload is not None:
        folder.check_same_settings(Config.from_dict(payload["config"]).algorithm_fields(), config.algorithm_fields())
        state = state_from_checkpoint(payload)
        rng = restore_rng(payload)
        start, elapsed = payload["iteration"], payload["elapsed_s"]
    else:
        torch.manual_seed(config.seed)
        state = MetaState.fresh(init_params(spec, torch.Generator().manual_seed(config.seed)))
        rng = np.random.default_rng(config.seed)
        start, elapsed = 0, 0.0
    state.params = [p.to(device) for p in state.params]
    state.adam_v = [v.to(device) for v in state.adam_v]

    if rank == 0:
        session = {
            "command": command,
            "from_iteration": start,
            "device": device,
            "cuda_graph": cuda_graph,
            "processes": world,
            **machine(),
        }
        if device.startswith("cuda"):  # the card decides the speed: provenance names it
            session["gpu"] = torch.cuda.get_device_name(torch.device(device))
        sessions = folder.saved_config().get("sessions", []) if start else []
        sessions = [s for s in sessions if s["from_iteration"] < start] + [session]
        run = {"config": config.to_dict(), "model": spec.to_dict(), **data.provenance, "sessions": sessions}
        folder.begin(start, "iteration", run, data.test_classes)

    adam = make_inner_optimizer(config.inner_optimizer, config.lr)
    carry_state = config.carry_adam_state and adam.has_state  # SGD has no state: it stays as it is
    batched_step = (
        GraphedMetaStep(spec, adam, config.algorithm, carry_state)
        if cuda_graph
        else partial(meta_step, spec, adam, algorithm=config.algorithm, carry_state=carry_state)
    )
    n = config.ways * config.train_shots
    end = last_step(config.meta_iters, stop_after)
    bar = progress_bar(config.meta_iters, start, "meta-train", "it") if rank == 0 and progress else None
    metrics = folder.metrics_log() if rank == 0 else None
    elapsed_s = Stopwatch(elapsed)
    loss_sum, loss_count = 0.0, 0
    for iteration in range(start, end):
        images, _ = data.meta_train.sample(rng, config.meta_batch, config.ways, config.train_shots)
        images, labels = flatten_task(images)
        order = minibatch_order(
            rng,
            config.meta_batch,
            n,
            config.inner_batch,
            config.inner_iters,
            config.final_batch == "separate",
            config.replacement,
        )
        local = slice(rank * config.meta_batch // world, (rank + 1) * config.meta_batch // world)
        images, labels = to_tensor(images[local]).to(device), torch.from_numpy(labels[local]).to(device)
        step_size = meta_step_size(config, iteration)
        if config.batched:
            losses = batched_step(state, images, labels, order[:, local], step_size, total_tasks=config.meta_batch)
        else:
            losses = per_task_meta_step(
                spec,
                adam,
                state,
                images,
                labels,
                order,
                step_size,
                config.algorithm,
                carry_state,
                config.sequential_adam_state,
            )
        loss_sum += losses[-1].detach().mean() / config.inner_batch  # a tensor: read once per row, no sync per step
        loss_count += 1
        done = iteration + 1
        if rank != 0:
            continue
        row = None
        if due(done, LOG_INTERVAL, end):
            row = {
                "iteration": done,
                "meta_step_size": meta_step_size(config, iteration),
                "inner_loss": float(loss_sum) / loss_count,
                "elapsed_s": elapsed_s(),
            }
            loss_sum, loss_count = 0.0, 0
        if due(done, config.eval_interval, config.meta_iters):
            row = row or {"iteration": done, "elapsed_s": elapsed_s()}
            evaluation_started = time.perf_counter()
            row |= live_eval(spec, config, state, data, done)
            # the estimate's own seconds: elapsed_s less the earlier ones is the training's time
            row["eval_s"] = time.perf_counter() - evaluation_started
            if bar:
                bar.set_postfix(train=f"{row['train_accuracy']:.3f}", test=f"{row['test_accuracy']:.3f}")
        if row:
            metrics.write(row)
        if bar:
            bar.update(1)
        if due(done, config.checkpoint_interval, end):
            save_checkpoint(
                folder.checkpoint,
                config=config.to_dict(),
                spec=spec.to_dict(),
                state=state,
                iteration=done,
                rng=rng,
                elapsed_s=elapsed_s(),
            )
    if bar:
        bar.close()
    if metrics:
        metrics.close()
    if rank == 0 and end == config.meta_iters:
        from .plot import plot_learning_curve

        plot_learning_curve(folder.metrics, folder.dir / "learning_curve.png")
    if world > 1:
        dist.destroy_process_group()
    return state
