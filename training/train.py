"""The meta-training run: resumable, checkpointed, logged as JSON lines, single or multi-process."""

import json
import os
import platform
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .checkpoint import (
    CHECKPOINT_NAME,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    state_from_checkpoint,
    write_atomic_text,
)
from .cuda_graph import GraphedMetaStep
from .data import load_task_data
from .evaluate import evaluate
from .model import PRESET_MODELS, ModelSpec, init_params
from .presets import Config
from .reptile import InnerAdam, MetaState, meta_step, per_task_meta_step
from .tasks import flatten_task, minibatch_order, to_tensor

METRICS_NAME = "metrics.jsonl"


def model_spec(config: Config) -> ModelSpec:
    base = dict(PRESET_MODELS[config.dataset])
    base["filters"] = config.filters
    return ModelSpec(ways=config.ways, **base)


def meta_step_size(config: Config, iteration: int) -> float:
    """Linear annealing from meta_step to meta_step_final, as the reference (frac_done = i / iters)."""
    done = iteration / config.meta_iters
    return done * config.meta_step_final + (1 - done) * config.meta_step


def _distributed(device: str) -> tuple:
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
        )
        result[f"{name}_accuracy"] = r.accuracy
    return result


def _read_metrics(path: Path, upto: int) -> list:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [row for row in rows if row["iteration"] <= upto]


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
    rank, world, device = _distributed(device)
    cuda_graph = cuda_graph and config.batched and device.startswith("cuda")
    if config.meta_batch % world:
        raise ValueError(f"--meta-batch {config.meta_batch} must be divisible by the number of processes ({world})")
    if config.sequential_adam_state and (config.batched or not config.carry_adam_state):
        raise ValueError("--sequential-adam-state needs --inner-loop per-task and --adam-state carry")
    if world > 1 and not config.batched:
        raise ValueError("--inner-loop per-task runs in a single process only")
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / CHECKPOINT_NAME
    spec = model_spec(config)
    data = load_task_data(config.dataset, data_dir, config.seed)

    if resume and checkpoint_path.exists():
        payload = load_checkpoint(checkpoint_path)
        saved = Config.from_dict(payload["config"]).algorithm_fields()
        changed = sorted(k for k, v in config.algorithm_fields().items() if saved[k] != v)
        if changed:
            raise ValueError(
                f"--resume: {checkpoint_path} was made with a different config "
                f"({', '.join(f'{k}={saved[k]!r}' for k in changed)}); use the same flags"
            )
        state = state_from_checkpoint(payload)
        rng = restore_rng(payload)
        start, elapsed = payload["iteration"], payload["elapsed_s"]
    else:
        if checkpoint_path.exists() and not resume:
            raise ValueError(
                f"--out {out_dir} already holds a run; pass --resume to continue it or choose another --out"
            )
        torch.manual_seed(config.seed)
        state = MetaState.fresh(init_params(spec, torch.Generator().manual_seed(config.seed)))
        rng = np.random.default_rng(config.seed)
        start, elapsed = 0, 0.0
    state.params = [p.to(device) for p in state.params]
    state.adam_v = [v.to(device) for v in state.adam_v]

    metrics_path = out_dir / METRICS_NAME
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        kept = _read_metrics(metrics_path, start)
        write_atomic_text(metrics_path, "".join(json.dumps(row) + "\n" for row in kept))
        session = {
            "command": command,
            "from_iteration": start,
            "device": device,
            "cuda_graph": cuda_graph,
            "processes": world,
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": f"{platform.machine()} {platform.processor()} {os.cpu_count()} cpus",
        }
        if device.startswith("cuda"):  # the card decides the speed: provenance names it
            session["gpu"] = torch.cuda.get_device_name(torch.device(device))
        config_path = out_dir / "config.json"
        sessions = json.loads(config_path.read_text()).get("sessions", []) if start and config_path.exists() else []
        sessions = [s for s in sessions if s["from_iteration"] < start] + [session]
        write_atomic_text(
            config_path,
            json.dumps(
                {"config": config.to_dict(), "model": spec.to_dict(), **data.provenance, "sessions": sessions}, indent=2
            ),
        )
        (out_dir / "test_classes.txt").write_text("\n".join(data.test_classes) + "\n")

    adam = InnerAdam(lr=config.lr)
    batched_step = (
        GraphedMetaStep(spec, adam, config.algorithm, config.carry_adam_state)
        if cuda_graph
        else partial(meta_step, spec, adam, algorithm=config.algorithm, carry_state=config.carry_adam_state)
    )
    n = config.ways * config.train_shots
    end = min(config.meta_iters, stop_after) if stop_after is not None else config.meta_iters
    bar = None
    if rank == 0 and progress:
        from tqdm import tqdm

        bar = tqdm(
            total=config.meta_iters, initial=start, desc="meta-train", unit="it", file=sys.stderr, dynamic_ncols=True
        )
    metrics = open(metrics_path, "a") if rank == 0 else None
    clock = time.perf_counter()
    loss_sum, loss_count = 0.0, 0
    for iteration in range(start, end):
        images, _ = data.meta_train.sample(rng, config.meta_batch, config.ways, config.train_shots)
        images, labels = flatten_task(images)
        order = minibatch_order(rng, config.meta_batch, n, config.inner_batch, config.inner_iters)
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
                config.carry_adam_state,
                config.sequential_adam_state,
            )
        loss_sum += losses[-1].detach().mean() / config.inner_batch  # a tensor: read once per row, no sync per step
        loss_count += 1
        done = iteration + 1
        if rank != 0:
            continue
        row = None
        if done % 100 == 0 or done == end:
            row = {
                "iteration": done,
                "meta_step_size": meta_step_size(config, iteration),
                "inner_loss": float(loss_sum) / loss_count,
                "elapsed_s": elapsed + time.perf_counter() - clock,
            }
            loss_sum, loss_count = 0.0, 0
        if done % config.eval_interval == 0 or done == config.meta_iters:
            row = (row or {"iteration": done}) | live_eval(spec, config, state, data, done)
            if bar:
                bar.set_postfix(train=f"{row['train_accuracy']:.3f}", test=f"{row['test_accuracy']:.3f}")
        if row:
            metrics.write(json.dumps(row) + "\n")
            metrics.flush()
        if bar:
            bar.update(1)
        if done % config.checkpoint_interval == 0 or done == end:
            save_checkpoint(
                checkpoint_path,
                config=config.to_dict(),
                spec=spec.to_dict(),
                state=state,
                iteration=done,
                rng=rng,
                elapsed_s=elapsed + time.perf_counter() - clock,
            )
    if bar:
        bar.close()
    if metrics:
        metrics.close()
    if rank == 0 and end == config.meta_iters:
        from .plot import plot_learning_curve

        plot_learning_curve(metrics_path, out_dir / "learning_curve.png")
    if world > 1:
        dist.destroy_process_group()
    return state
