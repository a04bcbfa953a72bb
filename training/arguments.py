"""The flags of `python -m training` (training/cli.py runs them), and argument types and checks the benchmarks share.

Every type and check turns a bad value into a one-line error that names the flag, never a traceback.
Nothing here imports torch at import time: `evaluate-bundle` runs without it.
"""

import argparse
import shlex
from pathlib import Path

from .presets import PRESETS, SINE_PRESETS, Config

# solution-distance's gradient-flow step length: where the distances have converged (docs/claims.md, section 6)
FLOW_STEP = 0.002


def number(parse, accept, description: str):
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


positive_int = number(int, lambda v: v >= 1, "a positive integer")
nonnegative_int = number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = number(float, lambda v: 0 < v < float("inf"), "a positive number")
nonnegative_float = number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
at_least_two = number(int, lambda v: v >= 2, "an integer >= 2")


def ways_x_shots(text: str) -> list:
    """ "5x1,5x5" -> [(5, 1), (5, 5)]."""
    try:
        settings = [tuple(int(x) for x in item.split("x")) for item in text.split(",")]
    except ValueError:
        settings = None
    if not settings or any(len(s) != 2 or min(s) < 1 for s in settings):
        raise argparse.ArgumentTypeError(f"expected ways x shots pairs such as 5x1,5x5, got {text!r}")
    return settings


def labelled_paths(kind: str):
    """An argument type: "LABEL=KIND[,KIND...]" -> (LABEL, [Path, ...]), one label over a path per seed."""

    def parse(text: str) -> tuple:
        label, _, listed = text.partition("=")
        paths = [Path(path) for path in listed.split(",") if path]
        if not label or not paths:
            raise argparse.ArgumentTypeError(f"expected LABEL={kind}[,{kind}...], got {text!r}")
        return label, paths

    return parse


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that override a preset's Config fields (train)."""
    group = parser.add_argument_group("overrides of the preset")
    group.add_argument("--ways", type=positive_int)
    group.add_argument("--shots", type=positive_int, help="evaluation shots")
    group.add_argument("--train-shots", type=positive_int)
    group.add_argument("--inner-batch", type=positive_int)
    group.add_argument("--inner-iters", type=positive_int)
    group.add_argument("--lr", type=positive_float, help="inner step size (Adam's or SGD's)")
    group.add_argument(
        "--inner-optimizer",
        choices=["adam", "sgd"],
        help="the inner loop's steps, in meta-training and fine-tuning: TensorFlow-style Adam with beta1 = 0 "
        "(default) or plain SGD, theta <- theta - lr g (the reference's --sgd; --adam-state changes nothing then)",
    )
    group.add_argument(
        "--meta-step",
        type=nonnegative_float,
        help="the outer step size, annealed linearly to --meta-step-final; above 1 moves past the tasks' mean "
        "(FOMAML's and MAML's update is one inner step where Reptile's is k, so theirs may want about k times it)",
    )
    group.add_argument("--meta-step-final", type=nonnegative_float)
    group.add_argument("--meta-batch", type=positive_int)
    group.add_argument("--meta-iters", type=positive_int)
    group.add_argument("--eval-batch", type=positive_int)
    group.add_argument("--eval-iters", type=positive_int)
    group.add_argument("--transductive", action=argparse.BooleanOptionalAction, default=None)
    group.add_argument(
        "--algorithm",
        choices=["reptile", "fomaml", "maml"],
        help="maml: second order, differentiating through the inner loop (docs/training.md)",
    )
    group.add_argument(
        "--final-batch",
        choices=["shared", "separate"],
        help="fomaml and maml: take the meta-gradient on the last inner mini-batch (shared, default) or "
        "on --inner-batch examples of the task that no inner step uses (separate)",
    )
    group.add_argument(
        "--replacement",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="draw each inner mini-batch afresh, distinct examples of the task, as the reference's --replacement "
        "(default: walk through shuffles of the task's examples, batch after batch)",
    )
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


def _add_start_measurement_commands(commands) -> None:
    """`gradient-alignment` and `solution-distance`: measurements at checkpoints and a random initialization."""
    about = (
        "E[g_i . g_j] of two mini-batches of one held-out task at each start, the paper's Taylor-analysis "
        "quantity (training/gradient_alignment.py)"
    )
    alignment = commands.add_parser("gradient-alignment", help=about, description=about)
    _add_start_flags(alignment)
    alignment.add_argument("--shots", type=positive_int, help="drawings a class in each task (default: train_shots)")
    alignment.add_argument(
        "--batch", type=positive_int, help="examples a mini-batch; two disjoint ones a task (default: inner_batch)"
    )
    about = "distance from each start to the weights fine-tuned on each held-out task (training/solution_distance.py)"
    distance = commands.add_parser("solution-distance", help=about, description=about)
    _add_start_flags(distance)
    distance.add_argument("--shots", type=positive_int, help="examples a class fine-tuned on (default: all of them)")
    distance.add_argument(
        "--optimizer",
        choices=("adam", "flow"),
        default="adam",
        help="fine-tuning: fresh Adam (default), or steps of length --lr down the gradient, tracing the "
        "gradient flow to a near point of the task's solutions",
    )
    distance.add_argument(
        "--lr",
        type=positive_float,
        help=f"fine-tuning step size (default: the run's lr with adam; {FLOW_STEP} with flow)",
    )
    distance.add_argument(
        "--loss-threshold",
        type=positive_float,
        default=0.01,
        help="a task is solved when its cross-entropy per example is below this (default 0.01)",
    )
    distance.add_argument("--max-steps", type=positive_int, default=500, help="full-batch fine-tuning steps at most")


def _add_start_flags(parser: argparse.ArgumentParser) -> None:
    """The flags the start measurements share: which starts, which held-out tasks, where the results go."""
    parser.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        required=True,
        help="a start (repeat for several, e.g. one run's checkpoints at several iterations for a curve); "
        "the first one's held-out classes and architecture are used for all",
    )
    parser.add_argument(
        "--random-init", action="store_true", help="also measure a random initialization of the same architecture"
    )
    parser.add_argument("--init-seed", type=nonnegative_int, help="its seed (default: the first checkpoint's run seed)")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--tasks", type=positive_int, default=100, help="held-out tasks (the same for every start)")
    parser.add_argument("--ways", type=positive_int, help="default and only choice: the checkpoints' head size")
    parser.add_argument("--seed", type=nonnegative_int, default=1, help="the tasks' seed")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--plot",
        type=Path,
        help="also draw them into this PNG (gradient-alignment: each tensor's cosine also into NAME-by-tensor.png)",
    )


def resolve_config(args, base: Config | None = None) -> Config:
    """The preset (or, when resuming, the run's saved config) with the flags given on top."""
    config = base or PRESETS[args.preset]
    overrides = {name: getattr(args, name) for name in Config.__dataclass_fields__ if hasattr(args, name)}
    if getattr(args, "adam_state", None):
        overrides["carry_adam_state"] = args.adam_state == "carry"
    if getattr(args, "inner_loop", None):
        overrides["batched"] = args.inner_loop == "batched"
    return config.updated(**overrides)


def build_parser(description: str) -> argparse.ArgumentParser:
    """The parser of `python -m training`: one subcommand per stage."""
    parser = argparse.ArgumentParser(prog="python -m training", description=description)
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
        "--steps",
        type=nonnegative_int,
        default=20_000,
        help="Adam steps (default 20000, ~25 min of 1 CPU thread); 0 writes the untrained start, the random "
        "initialization joint training and Reptile begin from, as the checkpoint",
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
    _add_start_measurement_commands(commands)
    _add_sine_command(commands)
    return parser


def _add_sine_command(commands) -> None:
    """`sine`: the paper's sine-wave toy, three starts trained, evaluated and exported (training/sine.py)."""
    about = (
        "the paper's sine-wave toy: Reptile and joint training from one random initialization, the three "
        "starts evaluated on held-out waves and, with --bundle, exported as a regression bundle (training/sine.py)"
    )
    sine = commands.add_parser("sine", help=about, description=about)
    sine.add_argument("--preset", choices=sorted(SINE_PRESETS), default="sine")
    sine.add_argument(
        "--out",
        type=Path,
        default=Path("runs/sine"),
        help="run directory: sine.pt (the starts) and evaluation.json; a run there with the same settings is "
        "reused, not retrained",
    )
    sine.add_argument("--bundle", type=Path, help="also write the bundle here, e.g. static/models/sine")
    sine.add_argument("--force", action="store_true", help="replace a bundle already in --bundle")
    sine.add_argument("--meta-iters", type=positive_int, help="meta-iterations (and joint training's as many)")
    sine.add_argument("--seed", type=nonnegative_int, help="the initialization's and the training waves' seed")
    sine.add_argument("--eval-tasks", type=at_least_two, help="held-out waves (default 1000)")
    sine.add_argument("--eval-seed", type=nonnegative_int, help="the held-out waves' seed")
    sine.add_argument("--no-progress", action="store_true")


def command_line(argv: list) -> str:
    """The command as typed, for provenance (config.json, the model card)."""
    return "python -m training " + " ".join(shlex.quote(a) for a in argv)


def load_trained_flag(parser, path: Path, flag: str = "--checkpoint"):
    """training.checkpoint.load_trained, a missing or foreign file reported as an error naming `flag`."""
    from .checkpoint import load_trained

    try:
        return load_trained(path)
    except ValueError as error:  # missing, unreadable or not a checkpoint: the message says which
        parser.error(f"argument {flag}: {error}")


def check_device(parser, device: str) -> None:
    """A one-line error for --device cuda where there is none."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        parser.error("argument --device: cuda was asked for but no CUDA device is available")
