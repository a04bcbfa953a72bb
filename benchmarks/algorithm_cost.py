"""Wall time and peak memory of one meta-iteration of Reptile, FOMAML and MAML as the inner steps k
grow, for this project's batched meta-iteration and for learn2learn (the most used PyTorch
meta-learning library) side by side, on the same model, weights and tasks.

What one meta-iteration is, for each side (meta-batch G tasks, k inner steps of `inner batch`
examples; the mini-batches are training/tasks.minibatch_order's, the same indices for both sides):
  project       training.reptile.meta_step(..., algorithm=reptile|fomaml|maml): all G tasks through
                one set of grouped kernels, the inner Adam of the reference code.
  learn2learn   its examples' loops, one task after another on an nn.Module copy of
                training/model.py's CNN (the same layers and weights, `peer_model`):
                reptile  examples/vision/reptile_miniimagenet.py: copy.deepcopy of the model, k steps of
                         torch.optim.Adam(betas=(0.0, 0.999)) whose state passes from task to task (the
                         example's int 0 is refused by torch 2.13), the difference to the meta-parameters
                         accumulated as .grad, then an SGD meta step; the example's evaluation forward
                         pass (a logged number) is left out.
                fomaml / maml  examples/vision/maml_omniglot.py: l2l.algorithms.MAML(model, lr,
                         first_order=True / False), .clone() per task, k - 1 .adapt() steps (SGD, as
                         its wrapper does) and the loss on the k-th batch backward, then Adam on the
                         mean meta-gradient.
Both sides minimise the project's loss (cross-entropy summed over a batch). The inputs are random
images of Omniglot's shape (1 x 28 x 28): the cost does not depend on the pixels.

Time: the median over --repeats meta-iterations after --warmup ones, each timed alone (on a GPU
after synchronising); with --rounds R, R fresh processes a side, the sides taking turns, and the
median of their figures. Memory on CPU (MiB): each configuration runs in a fresh process; its peak
resident set (ru_maxrss) after the meta-iterations less the same peak read just before the first
one, once the imports, weights and inputs are made: what the meta-iterations add to an idle
process of the same imports. ru_maxrss counts torch's allocations, which tracemalloc (Python's
allocator only) does not see, and it only grows: a fresh process keeps one configuration's peak
out of the next. On CUDA: torch.cuda.max_memory_allocated over the meta-iterations less what was
allocated before them. --threads (default 1) applies to every process alike.

learn2learn is not a dependency of the project: `make bench-extra` installs it into the virtual
environment's bench-peer/ folder (tools/install_learn2learn.sh, pins in
benchmarks/requirements-peer.txt), which only this benchmark's learn2learn processes import from.

    python -m benchmarks.algorithm_cost --quick      # k = 5 only: one row per algorithm
    python -m benchmarks.algorithm_cost              # k = 1, 2, 5, 10, 20
    python -m benchmarks.algorithm_cost --device cuda --out runs/algorithm_cost.json
"""

import argparse
import copy
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from training.arguments import check_device, nonnegative_int, positive_int
from training.model import BN_EPS, PRESET_MODELS, ModelSpec, init_params
from training.presets import PRESETS
from training.reptile import ALGORITHMS, InnerAdam, MetaState, meta_step
from training.tasks import minibatch_order

ROOT = Path(__file__).resolve().parent.parent
IMPLEMENTATIONS = ("project", "learn2learn")
GOAL = 3.0  # the project's Reptile meta-iteration at least this many times as fast as the peer's
NOT_INSTALLED = "not installed: make bench-extra"


def peer_model(spec: ModelSpec, params: list) -> nn.Module:
    """training/model.py's CNN (G = 1) as an nn.Module with the given weights: conv 3x3 stride 2
    without bias, BatchNorm on batch statistics, ReLU, four times, then the linear head."""
    if spec.max_pool:
        raise ValueError("peer_model builds the Omniglot CNN (stride-2 convolutions), not the max-pool variant")
    layers, channels = [], spec.channels
    for _ in range(spec.layers):
        layers += [
            nn.Conv2d(channels, spec.filters, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(spec.filters, eps=BN_EPS, track_running_stats=False),
            nn.ReLU(),
        ]
        channels = spec.filters
    model = nn.Sequential(*layers, nn.Flatten(), nn.Linear(spec.feature_size(), spec.ways))
    with torch.no_grad():  # the parameter order is training/model.py's: conv, bn scale, bn shift, ..., fc
        for target, source in zip(model.parameters(), params, strict=True):
            target.copy_(source)
    return model


def summed_loss(logits, labels):
    """The project's inner loss: cross-entropy summed over the batch."""
    return F.cross_entropy(logits, labels, reduction="sum")


def l2l_reptile_step(model, meta_opt, adam_state, lr, images, labels, order) -> dict:
    """One meta-iteration of learn2learn's Reptile example; returns the inner Adam state it carries on."""
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    for g in range(images.shape[0]):
        learner = copy.deepcopy(model)
        adapt_opt = torch.optim.Adam(learner.parameters(), lr=lr, betas=(0.0, 0.999))
        adapt_opt.load_state_dict(adam_state)
        for batch in order[:, g]:
            adapt_opt.zero_grad()
            summed_loss(learner(images[g, batch]), labels[g, batch]).backward()
            adapt_opt.step()
        adam_state = adapt_opt.state_dict()
        for p, q in zip(model.parameters(), learner.parameters(), strict=True):
            p.grad.add_(q.detach(), alpha=-1.0)
    for p in model.parameters():  # grad = theta - mean(theta_i): SGD(meta step) moves theta towards the mean
        p.grad.mul_(1.0 / images.shape[0]).add_(p.detach())
    meta_opt.step()
    return adam_state


def l2l_maml_step(maml, meta_opt, images, labels, order) -> None:
    """One meta-iteration of learn2learn's MAML example (first or second order, as `maml` was made)."""
    meta_opt.zero_grad()
    for g in range(images.shape[0]):
        learner = maml.clone()
        for batch in order[:-1, g]:
            learner.adapt(summed_loss(learner(images[g, batch]), labels[g, batch]))
        summed_loss(learner(images[g, order[-1, g]]), labels[g, order[-1, g]]).backward()
    for p in maml.parameters():
        p.grad.mul_(1.0 / images.shape[0])
    meta_opt.step()


def meta_iteration(settings: dict, device: torch.device):
    """step() of one configuration, its weights and inputs made: each call runs one meta-iteration in place."""
    config = PRESETS[settings["preset"]]
    spec = ModelSpec(ways=config.ways, **(PRESET_MODELS["omniglot"] | {"filters": settings["filters"]}))
    params = [p.to(device) for p in init_params(spec, torch.Generator().manual_seed(0))]
    n, steps = config.ways * config.train_shots, settings["inner_steps"]
    images = torch.rand(config.meta_batch, n, 1, 28, 28, generator=torch.Generator().manual_seed(1)).to(device)
    labels = torch.arange(config.ways).repeat_interleave(config.train_shots).repeat(config.meta_batch, 1).to(device)
    order = minibatch_order(np.random.default_rng(2), config.meta_batch, n, config.inner_batch, steps)
    algorithm = settings["algorithm"]
    if settings["implementation"] == "project":
        adam, state = InnerAdam(config.lr), MetaState.fresh(params)
        return lambda: meta_step(spec, adam, state, images, labels, order, config.meta_step, algorithm=algorithm)
    import learn2learn as l2l  # only in the peer's processes: the benchmark runs without it

    model, order = peer_model(spec, params).to(device), torch.as_tensor(order, device=device)
    if algorithm == "reptile":
        meta_opt = torch.optim.SGD(model.parameters(), config.meta_step)
        carried = [torch.optim.Adam(model.parameters(), lr=config.lr, betas=(0.0, 0.999)).state_dict()]

        def step():
            carried[0] = l2l_reptile_step(model, meta_opt, carried[0], config.lr, images, labels, order)

        return step
    maml = l2l.algorithms.MAML(model, lr=config.lr, first_order=algorithm == "fomaml")
    meta_opt = torch.optim.Adam(maml.parameters(), lr=config.lr)
    return lambda: l2l_maml_step(maml, meta_opt, images, labels, order)


def measure(settings: dict) -> dict:
    """In this process: seconds per meta-iteration (median) and the MiB the meta-iterations add to
    the peak memory of one configuration (on CPU also the idle process's peak, before them)."""
    torch.set_num_threads(settings["threads"])
    device = torch.device(settings["device"])
    cuda = device.type == "cuda"
    step = meta_iteration(settings, device)
    synchronize = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        synchronize()
        torch.cuda.reset_peak_memory_stats()
        allocated = torch.cuda.memory_allocated()
    idle_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    times = []
    for i in range(settings["warmup"] + settings["repeats"]):
        synchronize()
        began = time.perf_counter()
        step()
        synchronize()
        if i >= settings["warmup"]:
            times.append(time.perf_counter() - began)
    result = {"seconds": float(np.median(times))}
    if cuda:
        result["mib"] = (torch.cuda.max_memory_allocated() - allocated) / 2**20
    else:
        result["idle_mib"] = idle_kib / 1024
        result["mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - idle_kib) / 1024
    return result


def measure_in_child(settings: dict, peer_path: Path) -> dict:
    """measure(settings) in a fresh process (so that its peak memory is its own); learn2learn's
    processes see peer_path. {"error": ...} where the process failed."""
    path = [str(ROOT)] + ([str(peer_path)] if settings["implementation"] == "learn2learn" else [])
    threads = str(settings["threads"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "benchmarks.algorithm_cost", "--child", json.dumps(settings)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        return {"error": f"failed: {last[:100]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def peer_installed(peer_path: Path) -> bool:
    """learn2learn importable by the peer's processes: in peer_path (make bench-extra) or in this environment."""
    return (peer_path / "learn2learn").is_dir() or importlib.util.find_spec("learn2learn") is not None


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.algorithm_cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    omniglot = sorted(name for name, config in PRESETS.items() if config.dataset == "omniglot")
    parser.add_argument("--preset", choices=omniglot, default="omniglot-5w1s", help="the tasks' shapes and lr")
    parser.add_argument("--filters", type=positive_int, help="the CNN's width (default: the preset's)")
    parser.add_argument(
        "--inner-steps", type=positive_int, nargs="+", default=[1, 2, 5, 10, 20], help="the values of k"
    )
    parser.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=list(ALGORITHMS))
    parser.add_argument("--quick", action="store_true", help="k = 5 only, 1 warm-up and 3 timed meta-iterations")
    parser.add_argument("--warmup", type=nonnegative_int, default=2, help="untimed meta-iterations first")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed meta-iterations (the median)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads of every process")
    parser.add_argument("--rounds", type=positive_int, default=1, help="fresh processes a side and configuration")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--peer-path",
        type=Path,
        default=Path(sys.prefix) / "bench-peer",
        help="where make bench-extra put learn2learn (default: the environment's bench-peer/)",
    )
    parser.add_argument("--no-peer", action="store_true", help="measure the project's implementation only")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--plot", type=Path, help="draw time and memory against k as a PNG here")
    parser.add_argument(
        "--replot", type=Path, metavar="JSON", help="print and --plot the rows of an earlier --out, measuring nothing"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None:
        check_device(parser, args.device)
    if args.quick:
        args.inner_steps, args.warmup, args.repeats, args.rounds = [5], min(args.warmup, 1), min(args.repeats, 3), 1
    return args


def measure_row(args, base: dict, implementations: list, algorithm: str, steps: int) -> dict:
    """One algorithm at one k on each side: --rounds fresh processes a side, the sides taking turns
    (so that the machine's drift hits both alike); the medians over the rounds."""
    row = {"algorithm": algorithm, "inner_steps": steps}
    runs = {name: [] for name in implementations}
    settings = dict(base, algorithm=algorithm, inner_steps=steps, warmup=args.warmup, repeats=args.repeats)
    for round_ in range(args.rounds):
        for name in implementations[:: 1 if round_ % 2 == 0 else -1]:
            runs[name].append(measure_in_child(dict(settings, implementation=name), args.peer_path))
    for name in IMPLEMENTATIONS:
        done = [r for r in runs.get(name, []) if "error" not in r]
        if name not in runs:
            row[name] = {"error": "not measured (--no-peer)" if args.no_peer else NOT_INSTALLED}
        elif len(done) < len(runs[name]):
            row[name] = next(r for r in runs[name] if "error" in r)
        else:
            row[name] = {key: float(np.median([r[key] for r in done])) for key in done[0]}
            row[name]["seconds_per_round"] = [r["seconds"] for r in done]
    project, peer = row["project"], row["learn2learn"]
    row["time_ratio"], row["memory_ratio"] = ratio(peer, project, "seconds"), ratio(peer, project, "mib")
    return row


def cell(result: dict | None, key: str, scale: float, width: int) -> str:
    value = None if result is None else result.get(key)
    return f"{'-' if value is None else f'{value * scale:.1f}':>{width}}"


def ratio(peer: dict, project: dict, key: str) -> float | None:
    if peer.get(key) is None or not project.get(key):
        return None
    return peer[key] / project[key]


def print_row(row: dict) -> None:
    project, peer = row["project"], row["learn2learn"]
    line = (
        f"{row['algorithm']:9} {row['inner_steps']:3} | {cell(project, 'seconds', 1000, 10)} "
        f"{cell(project, 'mib', 1, 7)} | {cell(peer, 'seconds', 1000, 14)} {cell(peer, 'mib', 1, 7)} | "
        f"{cell(row, 'time_ratio', 1, 16)}x {cell(row, 'memory_ratio', 1, 15)}x"
    )
    errors = [f"{name}: {row[name]['error']}" for name in IMPLEMENTATIONS if "error" in row[name]]
    print(line + ("  " + "; ".join(errors) if errors else ""), flush=True)


def plot(rows: list, path: Path, title: str) -> None:
    """Milliseconds and MiB of a meta-iteration against k, a line per algorithm and implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, scale, label in ((axes[0], "seconds", 1000, "ms per meta-iteration"), (axes[1], "mib", 1, "MiB")):
        for algorithm in dict.fromkeys(r["algorithm"] for r in rows):
            for name, style in zip(IMPLEMENTATIONS, ("-o", "--s"), strict=True):
                points = [(r["inner_steps"], r[name].get(key)) for r in rows if r["algorithm"] == algorithm]
                points = [(k, v * scale) for k, v in points if v is not None]  # an error row has no figure
                if points:
                    ax.plot(*zip(*points, strict=True), style, label=f"{algorithm} ({name})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("inner steps k")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def replot(args) -> int:
    """Print and plot a saved run."""
    try:
        record = json.loads(args.replot.read_text())
        rows, settings = record["rows"], record["settings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"--replot: {args.replot} is not a JSON this benchmark wrote ({error})") from None
    for row in rows:
        print_row(row)
    if args.plot:
        plot(rows, args.plot, plot_title(settings))
    return 0


def plot_title(settings: dict) -> str:
    return (
        f"One meta-iteration, {settings['preset']} shapes, {settings['device']}, {settings['threads']} thread(s): "
        "the project (solid) and learn2learn (dashed)"
    )


def main(argv=None) -> int:
    """Measure every configuration in fresh processes and print a table, a row per algorithm and k."""
    args = parse_arguments(argv)
    if args.child is not None:
        print(json.dumps(measure(json.loads(args.child))))
        return 0
    if args.replot:
        return replot(args)
    config = PRESETS[args.preset]
    filters = args.filters or config.filters
    base = dict(preset=args.preset, filters=filters, threads=args.threads, device=args.device)
    peer = not args.no_peer and peer_installed(args.peer_path)
    implementations = ["project", "learn2learn"] if peer else ["project"]
    print(
        f"{args.preset}: {config.ways}-way, {config.train_shots} examples per class, inner batch {config.inner_batch}, "
        f"meta-batch {config.meta_batch}, {filters} filters, random 1x28x28 images; {args.device}, {args.threads} "
        f"thread(s), torch {torch.__version__}, {platform.machine()} {os.cpu_count()} cpus; median of {args.repeats} "
        f"meta-iterations after {args.warmup} warm-up(s), {args.rounds} process(es) a side"
    )
    if args.device == "cpu":
        print("MiB: a fresh process's peak resident memory less its peak before the first meta-iteration")
    else:
        print("MiB: torch.cuda.max_memory_allocated during the meta-iterations less what was allocated before")
    print(
        f"{'algorithm':9} {'k':>3} | {'project ms':>10} {'MiB':>7} | {'learn2learn ms':>14} {'MiB':>7} | "
        f"{'time peer/project':>17} {'MiB peer/project':>16}"
    )
    rows = []
    for steps in args.inner_steps:
        for algorithm in args.algorithms:
            rows.append(measure_row(args, base, implementations, algorithm, steps))
            print_row(rows[-1])
    reptile = [r for r in rows if r["algorithm"] == "reptile" and r["time_ratio"] is not None]
    if reptile:
        met = all(r["time_ratio"] >= GOAL for r in reptile)
        speeds = ", ".join(f"k={r['inner_steps']} {r['time_ratio']:.2f}x" for r in reptile)
        print(
            f"goal: the project's Reptile meta-iteration >= {GOAL:.0f}x as fast as learn2learn's on this "
            f"{args.device}: {speeds} -> {'met' if met else 'not met'}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"settings": vars(args) | {"peer_path": str(args.peer_path), "out": str(args.out)}, "rows": rows}
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    if args.plot:
        plot(rows, args.plot, plot_title(vars(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
