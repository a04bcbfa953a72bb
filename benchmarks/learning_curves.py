"""Learning curves: held-out few-shot accuracy against meta-iterations and against training time, for
several presets (or one preset run by several algorithms), several seeds each.

    python -m benchmarks.learning_curves --presets ablation-g1,ablation-g2 --seeds 0,1,2 --out runs/ablation \
        --plot runs/ablation/curves.png
    python -m benchmarks.learning_curves --presets omniglot-5w1s --algorithms reptile,fomaml,maml --seeds 0,1,2 \
        --meta-iters 10000 --eval-interval 1000 --out runs/algorithms --plot runs/algorithms/curves.png

A curve is a preset or, with --algorithms, a preset run by one algorithm (FOMAML and MAML take their
meta-gradient on --final-batch: shared by default, the reference's --foml). Each (curve, seed) is one
run of training/train.py in OUT/<curve>/seed-<seed>: checkpoint.pt, config.json, metrics.jsonl. With
--resume, finished runs are skipped, interrupted ones continue from their checkpoint (bit for bit)
and missing ones start; without it a folder that already holds a run is refused. --no-train reads
the runs as they stand (finished or not, or still training in another process) and only prints the
table and draws the plot. --runs LABEL=DIR[,DIR...] (repeatable, in place of --presets) reports run
folders trained some other way, e.g. by `python -m training train` with options no preset has, one
curve a label and a seed a folder; it trains nothing.

Accuracy: each run's live held-out estimate (metrics.jsonl's test_accuracy: --eval-tasks fresh
held-out tasks every --eval-interval meta-iterations, fine-tuned as the preset evaluates). A curve
is the mean over seeds; its band, and the table's range, the minimum and maximum across seeds (the
table also gives the standard deviation). Training time: a run's elapsed seconds less the seconds
its earlier live estimates took (their eval_s); the time axis is the mean of it over seeds.
"""

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

from training.arguments import check_device, labelled_paths, nonnegative_float, positive_int
from training.presets import PRESETS
from training.reptile import ALGORITHMS

SCALES = ((7200, 3600, "hours"), (120, 60, "minutes"), (0, 1, "seconds"))  # (from, divide by, unit)


def name_list(choices, what: str):
    """An argparse type: comma-separated names, each one of `choices`."""

    def convert(text: str) -> list:
        names = [name for name in text.split(",") if name]
        unknown = [name for name in names if name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {what}: {', '.join(unknown)}")
        if not names:
            raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got {text!r}")
        return names

    return convert


def seed_list(text: str) -> list:
    """ "0,1,2" -> [0, 1, 2]."""
    try:
        seeds = [int(seed) for seed in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct integers >= 0 separated by commas, got {text!r}")
    return seeds


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.learning_curves",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    curves = parser.add_mutually_exclusive_group(required=True)
    curves.add_argument("--presets", type=name_list(PRESETS, "presets"))
    curves.add_argument(
        "--runs",
        type=labelled_paths("DIR"),
        action="append",
        help="LABEL=DIR[,DIR...]: report these run folders as a curve",
    )
    parser.add_argument(
        "--algorithms", type=name_list(ALGORITHMS, "algorithms"), help="run each preset by each of these"
    )
    parser.add_argument("--final-batch", choices=["shared", "separate"], default="shared", help="fomaml and maml's")
    parser.add_argument("--seeds", type=seed_list, default=[0])
    parser.add_argument("--meta-iters", type=positive_int, help="default: each preset's")
    parser.add_argument("--meta-step", type=nonnegative_float, help="default: each preset's")
    parser.add_argument("--meta-step-final", type=nonnegative_float, help="default: each preset's")
    parser.add_argument("--eval-interval", type=positive_int, help="meta-iterations between live estimates")
    parser.add_argument("--eval-tasks", type=positive_int, help="held-out tasks per live estimate")
    parser.add_argument("--out", type=Path, help="the runs' folder: OUT/<curve>/seed-<seed> (with --presets)")
    parser.add_argument("--plot", type=Path, help="draw the curves into this PNG")
    parser.add_argument("--resume", action="store_true", help="skip finished runs, continue interrupted ones")
    parser.add_argument("--no-train", action="store_true", help="only report the runs as they stand: table and plot")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    check_device(parser, args.device)
    if args.presets and args.out is None:
        parser.error("argument --out: required with --presets")
    if args.plot and not args.plot.parent.is_dir() and args.plot.parent != args.out:
        parser.error(f"argument --plot: directory {args.plot.parent} does not exist")
    args.parser = parser
    return args


def curve_configs(args) -> dict:
    """Curve name -> its Config (the seed set per run)."""
    configs = {}
    for preset in args.presets:
        base = PRESETS[preset].updated(
            meta_iters=args.meta_iters,
            meta_step=args.meta_step,
            meta_step_final=args.meta_step_final,
            eval_interval=args.eval_interval,
            eval_tasks=args.eval_tasks,
        )
        if not args.algorithms:
            configs[preset] = base
            continue
        for algorithm in args.algorithms:
            final_batch = "shared" if algorithm == "reptile" else args.final_batch
            configs[f"{preset}-{algorithm}"] = base.updated(algorithm=algorithm, final_batch=final_batch)
    return configs


def runs_of(args, name: str) -> list:
    """The run folders of one curve, a seed each."""
    return [args.out / name / f"seed-{seed}" for seed in args.seeds]


def saved_iteration(run: Path) -> int | None:
    """The iteration of the run's checkpoint, None where there is none."""
    from training.checkpoint import CHECKPOINT_NAME, load_checkpoint

    return load_checkpoint(run / CHECKPOINT_NAME)["iteration"] if (run / CHECKPOINT_NAME).exists() else None


def train_all(args, configs: dict, command: str) -> None:
    """Train every (curve, seed) that is not finished, one after another."""
    from training.train import train

    runs = [
        (run, config.updated(seed=seed))
        for name, config in configs.items()
        for run, seed in zip(runs_of(args, name), args.seeds, strict=True)
    ]
    held = [run for run, _ in runs if saved_iteration(run) is not None]
    if held and not args.resume:
        args.parser.error(f"argument --out: {held[0]} already holds a run; pass --resume to continue the runs")
    for run, config in runs:
        done = saved_iteration(run)
        if done is not None and done >= config.meta_iters:
            print(f"{run}: finished ({done} meta-iterations)", flush=True)
            continue
        print(f"{run}: {'resuming at ' + str(done) if done else 'starting'}", flush=True)
        train(
            config,
            run,
            args.data_dir,
            args.device,
            resume=done is not None,
            command=command,
            progress=not args.no_progress,
        )


def read_estimates(run: Path) -> list:
    """[(iteration, held-out accuracy, training seconds)] of one run's live estimates."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    estimates, evaluating = [], 0.0
    for row in rows:
        if "test_accuracy" in row:
            estimates.append((row["iteration"], row["test_accuracy"], row["elapsed_s"] - evaluating))
            evaluating += row["eval_s"]
    return estimates


def curve(runs: list) -> dict:
    """The seeds' estimates at the iterations all of them reached: mean, sd, min, max and training time."""
    by_seed = [{it: (acc, secs) for it, acc, secs in read_estimates(run)} for run in runs]
    iterations = sorted(set.intersection(*(set(estimates) for estimates in by_seed)))
    accuracy = [[estimates[it][0] for estimates in by_seed] for it in iterations]
    return {
        "iterations": iterations,
        "mean": [statistics.fmean(a) for a in accuracy],
        "sd": [statistics.stdev(a) if len(a) > 1 else 0.0 for a in accuracy],
        "min": [min(a) for a in accuracy],
        "max": [max(a) for a in accuracy],
        "seconds": [statistics.fmean(estimates[it][1] for estimates in by_seed) for it in iterations],
        "seeds": len(runs),
    }


def print_table(curves: dict) -> None:
    """One row per curve: its last estimate over seeds and its training seconds per meta-iteration."""
    print(f"{'curve':<34} seeds  iteration  held-out mean ± sd   min-max        s/iteration")
    for name, c in curves.items():
        if not c["iterations"]:
            print(f"{name:<34} {c['seeds']:>5}  no estimate reached by every seed yet")
            continue
        last = c["iterations"][-1]
        print(
            f"{name:<34} {c['seeds']:>5}  {last:>9}  {100 * c['mean'][-1]:6.2f} ± {100 * c['sd'][-1]:5.2f} %   "
            f"{100 * c['min'][-1]:5.1f}-{100 * c['max'][-1]:5.1f} %   {c['seconds'][-1] / last:.4f}"
        )


def plot(curves: dict, path: Path) -> None:
    """Held-out accuracy against meta-iterations and against training time: means, min-max bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    longest = max((c["seconds"][-1] for c in curves.values() if c["seconds"]), default=0)
    _, divide, unit = next(scale for scale in SCALES if longest >= scale[0])
    fig, (by_iteration, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for name, c in curves.items():
        mean, low, high = ([100 * a for a in c[key]] for key in ("mean", "min", "max"))
        hours = [s / divide for s in c["seconds"]]
        for axis, x in ((by_iteration, c["iterations"]), (by_time, hours)):
            (line,) = axis.plot(x, mean, label=f"{name} ({c['seeds']} seed{'' if c['seeds'] == 1 else 's'})")
            axis.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    by_iteration.set(xlabel="meta-iteration", ylabel="held-out few-shot accuracy (%)")
    by_time.set(xlabel=f"training time ({unit}, mean over seeds)")
    by_iteration.legend(fontsize="small")
    fig.suptitle("Live held-out estimates: mean over seeds, band = min-max across seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_arguments(argv)
    if args.runs:
        labels = [label for label, _ in args.runs]
        twice = next((label for label in labels if labels.count(label) > 1), None)
        if twice:
            args.parser.error(f"argument --runs: the label {twice!r} is given twice")
        missing = [run for _, folders in args.runs for run in folders if not (run / "metrics.jsonl").exists()]
        if missing:
            args.parser.error(f"argument --runs: {missing[0]} holds no run to report")
        return report(dict(args.runs), args)
    configs = curve_configs(args)
    if args.no_train:
        missing = [run for name in configs for run in runs_of(args, name) if not (run / "metrics.jsonl").exists()]
        if missing:
            args.parser.error(f"argument --no-train: {missing[0]} holds no run to report")
    else:
        try:
            train_all(args, configs, shlex.join(["python", "-m", "benchmarks.learning_curves", *argv]))
        except ValueError as error:  # a resumed run with other settings, a setting training refuses
            print(f"error: {error}", file=sys.stderr)
            return 2
    return report({name: runs_of(args, name) for name in configs}, args)


def report(runs: dict, args) -> int:
    """Print the table of every curve's run folders ({label: [folder per seed]}) and draw the plot."""
    curves = {name: curve(folders) for name, folders in runs.items()}
    print_table(curves)
    if args.plot:
        plot(curves, args.plot)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
