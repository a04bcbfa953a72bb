"""Command line: `python -m training train|evaluate|export|evaluate-bundle|baseline ...` (also the console script `reptile-train`)."""

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

from .presets import PRESETS, Config


def _number(parse, accept, description: str):
    """An argparse type: parse the text, and refuse values outside `accept` with a message naming the rule."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}")
        return value

    return convert


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
unit_float = _number(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def comma_separated(convert, description: str):
    """An argparse type for a comma-separated list whose items each pass `convert` (another such type)."""

    def convert_list(text: str) -> list:
        try:
            return [convert(item) for item in text.split(",")]
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {description}, got {text!r}") from None

    return convert_list


def ways_x_shots(text: str) -> list:
    """ "5x1,5x5" -> [(5, 1), (5, 5)]."""
    try:
        settings = [tuple(int(x) for x in item.split("x")) for item in text.split(",")]
    except ValueError:
        settings = None
    if not settings or any(len(s) != 2 or min(s) < 1 for s in settings):
        raise argparse.ArgumentTypeError(f"expected ways x shots pairs such as 5x1,5x5, got {text!r}")
    return settings


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("overrides of the preset")
    group.add_argument("--ways", type=positive_int)
    group.add_argument("--shots", type=positive_int, help="evaluation shots")
    group.add_argument("--train-shots", type=positive_int)
    group.add_argument("--inner-batch", type=positive_int)
    group.add_argument("--inner-iters", type=positive_int)
    group.add_argument("--lr", type=positive_float, help="inner Adam step size")
    group.add_argument("--meta-step", type=unit_float)
    group.add_argument("--meta-step-final", type=unit_float)
    group.add_argument("--meta-batch", type=positive_int)
    group.add_argument("--meta-iters", type=positive_int)
    group.add_argument("--eval-batch", type=positive_int)
    group.add_argument("--eval-iters", type=positive_int)
    group.add_argument("--transductive", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument("--algorithm", choices=["reptile", "fomaml"])
    group.add_argument(
        "--adam-state",
        choices=["carry", "reset"],
        help="carry the inner Adam state across tasks (reference) or reset it per task",
    )
    group.add_argument(
        "--inner-loop",
        choices=["batched", "per-task"],
        help="all tasks of a meta-batch through grouped kernels (default) or one task at a time",
    )
    group.add_argument(
        "--sequential-adam-state",
        action="store_true",
        default=None,
        help="with --inner-loop per-task: pass the Adam state from task to task as the reference "
        "code does, instead of averaging the tasks' states",
    )
    group.add_argument("--filters", type=positive_int)
    group.add_argument("--seed", type=nonnegative_int)
    group.add_argument("--eval-interval", type=positive_int)
    group.add_argument("--eval-tasks", type=positive_int)
    group.add_argument("--checkpoint-interval", type=positive_int)


def resolve_config(args, base: Config | None = None) -> Config:
    """The preset (or, when resuming, the run's saved config) with the flags given on top."""
    config = base or PRESETS[args.preset]
    overrides = {name: getattr(args, name) for name in Config.__dataclass_fields__ if hasattr(args, name)}
    if getattr(args, "adam_state", None):
        overrides["carry_adam_state"] = args.adam_state == "carry"
    if getattr(args, "inner_loop", None):
        overrides["batched"] = args.inner_loop == "batched"
    return config.updated(**overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="meta-train a Reptile initialization")
    train.add_argument("--preset", choices=sorted(PRESETS), default="omniglot-5w5s")
    train.add_argument("--data-dir", type=Path, help="where the dataset zips are (downloaded if missing)")
    train.add_argument("--out", type=Path, default=Path("runs/default"), help="run directory")
    train.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--no-progress", action="store_true")
    train.add_argument(
        "--no-cuda-graph",
        action="store_true",
        help="on a GPU, run the inner loop eagerly instead of replaying it as one CUDA graph",
    )
    _add_config_flags(train)

    ev = commands.add_parser("evaluate", help="N-way K-shot accuracy of a checkpoint, the paper's way")
    ev.add_argument("--checkpoint", type=Path, required=True)
    ev.add_argument("--data-dir", type=Path)
    ev.add_argument("--tasks", type=positive_int, default=10_000)
    ev.add_argument("--ways", type=positive_int)
    ev.add_argument("--shots", type=positive_int)
    ev.add_argument("--eval-batch", type=positive_int)
    ev.add_argument("--eval-iters", type=positive_int)
    ev.add_argument("--lr", type=positive_float)
    ev.add_argument("--mode", choices=["both", "transductive", "non-transductive"], default="both")
    ev.add_argument(
        "--adam-state",
        choices=["carry", "reset"],
        default="carry",
        help="fine-tune from the trained Adam state (carry) or a fresh Adam (reset)",
    )
    ev.add_argument("--split", choices=["test", "train", "both"], default="test")
    ev.add_argument("--seed", type=nonnegative_int, default=1)
    ev.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ev.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ev.add_argument(
        "--partial",
        type=Path,
        help="keep the progress in this file (rewritten every 100 tasks): rerun the same command to "
        "continue an interrupted evaluation; removed once the results are out",
    )
    ev.add_argument("--no-progress", action="store_true")

    ex = commands.add_parser("export", help="write a checkpoint as a bundle of ONNX graphs + weights (docs/bundle.md)")
    ex.add_argument("--checkpoint", type=Path, required=True)
    ex.add_argument("--out", type=Path, required=True, help="bundle directory, e.g. static/models/<name>")
    ex.add_argument("--name", help="the bundle's name (default: the --out directory's name)")
    ex.add_argument("--force", action="store_true", help="replace a bundle already in --out")
    ex.add_argument("--steps", type=positive_int, help="default adaptation steps (default: the run's eval_iters)")
    ex.add_argument("--lr", type=positive_float, help="default adaptation step size (default: the run's lr)")
    ex.add_argument("--chosen-by", help="the measurement that chose --steps/--lr (required with them)")

    eb = commands.add_parser(
        "evaluate-bundle",
        help="N-way K-shot accuracy of an exported bundle, running its ONNX "
        "graphs with its default adaptation (training/evaluate_bundle.py)",
    )
    eb.add_argument("--bundle", type=Path, required=True, help="bundle directory, e.g. static/models/<name>")
    eb.add_argument("--data-dir", type=Path, help="where the Omniglot zips are (downloaded if missing)")
    eb.add_argument("--tasks", type=positive_int, default=10_000)
    eb.add_argument(
        "--settings",
        type=ways_x_shots,
        default=[(5, 1), (5, 5)],
        help="ways x shots, comma-separated (default 5x1,5x5)",
    )
    eb.add_argument("--seed", type=nonnegative_int, default=1)
    eb.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="settings measured at once, one process each (the same tasks and results as --jobs 1)",
    )
    eb.add_argument(
        "--record", action="store_true", help="write the figures into the bundle's model.json and MODEL_CARD.md"
    )
    eb.add_argument("--no-progress", action="store_true")

    base = commands.add_parser(
        "baseline",
        help="no-meta-learning baseline: joint training over all training "
        "classes, checkpoint with a fresh N-way head for `evaluate` (training/baseline.py)",
    )
    base.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="omniglot-5w5s",
        help="dataset, model and the evaluation settings to compare under",
    )
    base.add_argument("--data-dir", type=Path, help="where the dataset zips are (downloaded if missing)")
    base.add_argument("--out", type=Path, help="run directory (default: runs/joint-<preset>)")
    base.add_argument(
        "--steps", type=positive_int, default=20_000, help="Adam steps (default 20000, ~25 min of 1 CPU thread)"
    )
    base.add_argument("--batch-size", type=positive_int, default=64)
    base.add_argument(
        "--lr", dest="joint_lr", type=positive_float, default=1e-3, help="joint training's Adam step size"
    )
    base.add_argument("--filters", type=positive_int)
    base.add_argument("--seed", type=nonnegative_int)
    base.add_argument("--eval-interval", type=positive_int, default=5_000, help="steps between live few-shot estimates")
    base.add_argument("--eval-tasks", type=positive_int, help="tasks per live estimate")
    base.add_argument("--checkpoint-interval", type=positive_int, default=1_000)
    base.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    base.add_argument("--no-progress", action="store_true")
    return parser


def _command_line(args) -> str:
    """The command as typed, for provenance (config.json, the model card)."""
    return "python -m training " + " ".join(shlex.quote(a) for a in args.argv)


def load_trained_flag(parser, path: Path, flag: str = "--checkpoint"):
    """training.checkpoint.load_trained, a missing or foreign file reported as an error naming `flag`."""
    from .checkpoint import load_trained

    try:
        return load_trained(path)
    except ValueError as error:  # missing, unreadable or not a checkpoint: the message says which
        parser.error(f"argument {flag}: {error}")


def check_device(parser, device: str) -> None:
    """A one-line CLI error for --device cuda where there is none (also used by the benchmarks)."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        parser.error("argument --device: cuda was asked for but no CUDA device is available")


def run_train(parser, args) -> int:
    from .checkpoint import CHECKPOINT_NAME, load_checkpoint
    from .train import train

    saved = None
    if args.resume and (args.out / CHECKPOINT_NAME).exists():
        saved = Config.from_dict(load_checkpoint(args.out / CHECKPOINT_NAME)["config"])
    config = resolve_config(args, saved)
    check_device(parser, args.device)
    command = _command_line(args)
    train(
        config,
        args.out,
        args.data_dir,
        args.device,
        args.resume,
        command,
        progress=not args.no_progress,
        cuda_graph=not args.no_cuda_graph,
    )
    print(f"done: {args.out}")
    return 0


def run_evaluate(parser, args) -> int:
    from tqdm import tqdm

    from .data import load_task_data
    from .evaluate import evaluate_modes
    from .evaluation_progress import EvaluationProgress
    from .omniglot import file_digest

    check_device(parser, args.device)
    if args.json and not args.json.parent.is_dir():  # found now, not after hours of evaluation
        parser.error(f"argument --json: directory {args.json.parent} does not exist")
    payload, config, spec, state = load_trained_flag(parser, args.checkpoint)
    ways = args.ways or config.ways
    if ways != spec.ways:
        parser.error(f"argument --ways: the checkpoint's head has {spec.ways} ways")
    state.params = [p.to(args.device) for p in state.params]
    state.adam_v = [v.to(args.device) for v in state.adam_v]
    modes = {"both": (False, True), "transductive": (True,), "non-transductive": (False,)}[args.mode]
    splits = {"both": ["test", "train"], "test": ["test"], "train": ["train"]}[args.split]
    shots = args.shots or config.shots
    settings = {
        "eval_batch": args.eval_batch or config.eval_batch,
        "eval_iters": args.eval_iters or config.eval_iters,
        "lr": args.lr or config.lr,
        "seed": args.seed,
        "tasks": args.tasks,
    }
    saved = None
    if args.partial:
        key = {
            "checkpoint_sha256": file_digest(args.checkpoint, "sha256"),
            "ways": ways,
            "shots": shots,
            "mode": args.mode,
            "adam_state": args.adam_state,
            **settings,
        }
        try:
            saved = EvaluationProgress(args.partial, key, args.device)
        except ValueError as error:
            parser.error(f"argument --partial: {error}")
    data = load_task_data(config.dataset, args.data_dir, config.seed)
    results = []
    for split in splits:
        sampler = data.test if split == "test" else data.train_eval
        bar = (
            None
            if args.no_progress
            else tqdm(total=args.tasks, desc=f"evaluate ({split})", unit="task", file=sys.stderr)
        )
        by_mode = evaluate_modes(
            spec,
            state,
            sampler,
            np.random.default_rng(args.seed),
            ways=ways,
            shots=shots,
            inner_batch=settings["eval_batch"],
            inner_iters=settings["eval_iters"],
            lr=settings["lr"],
            tasks=args.tasks,
            modes=modes,
            use_adam_state=args.adam_state == "carry",
            progress=bar.update if bar else None,
            resume=saved.resume(split) if saved else None,
            on_chunk=saved.saver(split) if saved else None,
        )
        if bar:
            bar.close()
        for transductive, result in by_mode.items():
            label = f"{ways}-way {shots}-shot, {split} characters, " + (
                "transductive" if transductive else "non-transductive"
            )
            print(f"{label}: {result}")
            results.append(
                {"split": split, "transductive": transductive, "ways": ways, "shots": shots, **result.to_dict()}
            )
    if args.json:
        devices = saved.devices if saved else [args.device]  # more than one: a --partial evaluation moved
        args.json.write_text(
            json.dumps(
                {
                    "checkpoint": str(args.checkpoint),
                    "iteration": payload["iteration"],
                    "adam_state": args.adam_state,
                    "settings": settings,
                    "devices": devices,
                    "results": results,
                },
                indent=2,
            )
        )
    if saved:
        saved.finished()
    return 0


def run_export(parser, args) -> int:
    from .export import export_bundle

    if not args.checkpoint.is_file():
        parser.error(f"argument --checkpoint: {args.checkpoint} does not exist")
    if (args.steps or args.lr) and not args.chosen_by:
        parser.error("argument --chosen-by: say which measurement chose --steps/--lr (it goes into the model card)")
    adaptation = {k: v for k, v in (("steps", args.steps), ("lr", args.lr), ("chosen_by", args.chosen_by)) if v}
    manifest = export_bundle(args.checkpoint, args.out, name=args.name, force=args.force, adaptation=adaptation)
    print(f"done: {args.out} ({manifest['name']})")
    return 0


def _result_with_progress(future, progress_queue, bars: dict):
    """A worker's result, moving the progress bars with what the workers report meanwhile."""
    from concurrent.futures import wait
    from queue import Empty

    while True:
        finished = future.done()  # read before draining, so the last reports are drained too
        while progress_queue is not None:
            try:
                setting, done = progress_queue.get_nowait()
            except Empty:
                break
            bars[setting].update(done)
        if finished:
            return future.result()
        wait([future], timeout=0.5)


def run_evaluate_bundle(parser, args) -> int:
    import contextlib
    import multiprocessing
    import time
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from bundle import BundleError, load_bundle

    from .evaluate_bundle import (
        accuracy_record,
        evaluate_bundle,
        evaluate_setting,
        record_accuracy,
        setting_rng,
        test_sampler,
    )

    try:
        bundle = load_bundle(args.bundle, threads=1)
    except BundleError as error:
        parser.error(f"argument --bundle: {error}")
    low, high = bundle.classes_range
    low_shots, high_shots = bundle.shots_range
    for ways, shots in args.settings:
        if not (low <= ways <= high and low_shots <= shots <= high_shots):
            parser.error(
                f"argument --settings: {ways}x{shots} is outside the bundle's {low}-{high} classes and "
                f"{low_shots}-{high_shots} shots"
            )
    sampler = test_sampler(bundle, args.data_dir)
    started = time.perf_counter()
    results = {}
    with contextlib.ExitStack() as stack:
        futures = progress_queue = None
        bars = {}
        if not args.no_progress:
            bars = {
                (ways, shots): stack.enter_context(
                    tqdm(total=args.tasks, desc=f"{ways}-way {shots}-shot", unit="task", file=sys.stderr, position=i)
                )
                for i, (ways, shots) in enumerate(args.settings)
            }
        if args.jobs > 1 and len(args.settings) > 1:
            # spawn, not fork: this process already holds onnxruntime sessions and their threads
            context = multiprocessing.get_context("spawn")
            pool = stack.enter_context(ProcessPoolExecutor(min(args.jobs, len(args.settings)), mp_context=context))
            if bars:  # the workers report tasks done through a queue, so every setting's bar moves
                progress_queue = stack.enter_context(context.Manager()).Queue()
            futures = {
                (ways, shots): pool.submit(
                    evaluate_setting, args.bundle, args.data_dir, args.seed, ways, shots, args.tasks, progress_queue
                )
                for ways, shots in args.settings
            }
        for ways, shots in args.settings:
            if futures:
                results[ways, shots] = _result_with_progress(futures[ways, shots], progress_queue, bars)
            else:
                bar = bars.get((ways, shots))
                results[ways, shots] = evaluate_bundle(
                    bundle,
                    sampler,
                    setting_rng(args.seed, ways, shots),
                    ways=ways,
                    shots=shots,
                    tasks=args.tasks,
                    progress=bar.update if bar else None,
                )
            for mode, result in results[ways, shots].items():
                tqdm.write(
                    f"{ways}-way {shots}-shot, {mode.replace('_', '-')}: {result}"
                )  # to stdout, not across a bar
                sys.stdout.flush()  # each figure as soon as it is known, also into a log file
    if args.record:
        command = _command_line(args)
        record_accuracy(
            args.bundle,
            accuracy_record(bundle, results, seed=args.seed, command=command, wall_s=time.perf_counter() - started),
        )
        print(f"recorded in {args.bundle}/model.json and MODEL_CARD.md")
    return 0


def run_baseline(parser, args) -> int:
    from .baseline import train_joint

    config = PRESETS[args.preset].updated(filters=args.filters, seed=args.seed, eval_tasks=args.eval_tasks)
    out = args.out or Path("runs") / f"joint-{args.preset}"
    command = _command_line(args)
    train_joint(
        config,
        out,
        args.data_dir,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.joint_lr,
        resume=args.resume,
        command=command,
        progress=not args.no_progress,
        eval_interval=args.eval_interval,
        checkpoint_interval=args.checkpoint_interval,
    )
    print(f"done: {out}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        if args.command == "train":
            return run_train(parser, args)
        if args.command == "baseline":
            return run_baseline(parser, args)
        if args.command == "export":
            return run_export(parser, args)
        if args.command == "evaluate-bundle":
            return run_evaluate_bundle(parser, args)
        return run_evaluate(parser, args)
    except ValueError as error:  # config/data problems: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
