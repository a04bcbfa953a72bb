"""Command line: `python -m training train|evaluate|export|evaluate-bundle|baseline|gradient-alignment|
solution-distance|sine ...` (also the console script `reptile-train`)."""

import sys
from pathlib import Path

from .arguments import FLOW_STEP, build_parser, check_device, command_line, load_trained_flag, resolve_config
from .presets import PRESETS, SINE_PRESETS, Config


def run_train(parser, args) -> int:
    """`train`: meta-train into --out (or continue the run there)."""
    from .checkpoint import CHECKPOINT_NAME, load_checkpoint
    from .train import train

    saved = None
    if args.resume and (args.out / CHECKPOINT_NAME).exists():
        saved = Config.from_dict(load_checkpoint(args.out / CHECKPOINT_NAME)["config"])
    config = resolve_config(args, saved)
    check_device(parser, args.device)
    train(
        config,
        args.out,
        args.data_dir,
        args.device,
        args.resume,
        command_line(args.argv),
        progress=not args.no_progress,
        cuda_graph=not args.no_cuda_graph,
    )
    print(f"done: {args.out}")
    return 0


def run_evaluate(parser, args) -> int:
    """`evaluate`: a checkpoint's accuracy, printed per split and mode (and written to --json)."""
    from .evaluate_checkpoint import EvaluationSettings, evaluate_checkpoint
    from .evaluation_progress import EvaluationProgress

    check_device(parser, args.device)
    if args.json and not args.json.parent.is_dir():  # found now, not after hours of evaluation
        parser.error(f"argument --json: directory {args.json.parent} does not exist")
    trained = load_trained_flag(parser, args.checkpoint)
    _, config, spec, _ = trained
    ways = args.ways or config.ways
    if ways != spec.ways:
        parser.error(f"argument --ways: the checkpoint's head has {spec.ways} ways")
    settings = EvaluationSettings(
        ways=ways,
        shots=args.shots or config.shots,
        eval_batch=args.eval_batch or config.eval_batch,
        eval_iters=args.eval_iters or config.eval_iters,
        lr=args.lr or config.lr,
        seed=args.seed,
        tasks=args.tasks,
        mode=args.mode,
        adam_state=args.adam_state,
        split=args.split,
    )
    saved = None
    if args.partial:
        try:
            saved = EvaluationProgress(args.partial, settings.progress_key(args.checkpoint), args.device)
        except ValueError as error:
            parser.error(f"argument --partial: {error}")

    def show(split: str, transductive: bool, result) -> None:
        mode = "transductive" if transductive else "non-transductive"
        print(f"{ways}-way {settings.shots}-shot, {split} characters, {mode}: {result}")

    evaluate_checkpoint(
        args.checkpoint,
        trained,
        settings,
        device=args.device,
        data_dir=args.data_dir,
        saved=saved,
        report=args.json,
        show_progress=not args.no_progress,
        on_result=show,
    )
    return 0


def run_export(parser, args) -> int:
    """`export`: write a checkpoint as a bundle (docs/bundle.md)."""
    from .export import export_bundle

    if not args.checkpoint.is_file():
        parser.error(f"argument --checkpoint: {args.checkpoint} does not exist")
    if (args.steps or args.lr) and not args.chosen_by:
        parser.error("argument --chosen-by: say which measurement chose --steps/--lr (it goes into the model card)")
    adaptation = {k: v for k, v in (("steps", args.steps), ("lr", args.lr), ("chosen_by", args.chosen_by)) if v}
    manifest = export_bundle(args.checkpoint, args.out, name=args.name, force=args.force, adaptation=adaptation)
    print(f"done: {args.out} ({manifest['name']})")
    return 0


def run_evaluate_bundle(parser, args) -> int:
    """`evaluate-bundle`: a bundle's accuracy through its ONNX graphs, per setting and mode (--record: into it)."""
    from tqdm import tqdm

    from bundle import BundleError, load_bundle

    from .evaluate_bundle import evaluate_settings

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

    def show(ways: int, shots: int, by_mode: dict) -> None:
        for mode, result in by_mode.items():
            tqdm.write(f"{ways}-way {shots}-shot, {mode.replace('_', '-')}: {result}")  # to stdout, not across a bar
        sys.stdout.flush()  # each figure as soon as it is known, also into a log file

    evaluate_settings(
        bundle,
        args.settings,
        data_dir=args.data_dir,
        seed=args.seed,
        tasks=args.tasks,
        jobs=args.jobs,
        show_progress=not args.no_progress,
        on_result=show,
        record_command=command_line(args.argv) if args.record else None,
    )
    if args.record:
        print(f"recorded in {args.bundle}/model.json and MODEL_CARD.md")
    return 0


def run_baseline(parser, args) -> int:
    """`baseline`: joint training over all training classes into --out (or continue the run there)."""
    from .baseline import train_joint

    config = PRESETS[args.preset].updated(filters=args.filters, seed=args.seed, eval_tasks=args.eval_tasks)
    out = args.out or Path("runs") / f"joint-{args.preset}"
    train_joint(
        config,
        out,
        args.data_dir,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.joint_lr,
        resume=args.resume,
        command=command_line(args.argv),
        progress=not args.no_progress,
        eval_interval=args.eval_interval,
        checkpoint_interval=args.checkpoint_interval,
    )
    print(f"done: {out}")
    return 0


def run_start_measurement(parser, args) -> int:
    """`gradient-alignment` and `solution-distance`: one measurement at each start, on the same held-out tasks."""
    from .start_points import check_shots, load_starts

    check_device(parser, args.device)
    for flag, path in (("--out", args.out), ("--plot", args.plot)):
        if path and not path.parent.is_dir():  # found now, not after the measurement
            parser.error(f"argument {flag}: directory {path.parent} does not exist")
    trained = [load_trained_flag(parser, path) for path in args.checkpoint]
    _, config, spec, _ = trained[0]
    if args.ways and args.ways != spec.ways:
        parser.error(f"argument --ways: the checkpoint's head has {spec.ways} ways")
    sampler, split, starts = load_starts(args.checkpoint, trained, args.data_dir, args.random_init, args.init_seed)
    settings = {"tasks": args.tasks, "ways": spec.ways, "seed": args.seed}
    if args.command == "gradient-alignment":
        from .gradient_alignment import run

        settings |= {"shots": args.shots or config.train_shots, "batch": args.batch or config.inner_batch}
        examples = settings["ways"] * settings["shots"]
        if 2 * settings["batch"] > examples:
            parser.error(
                f"argument --batch: two disjoint batches of {settings['batch']} do not fit in a task's "
                f"{examples} examples (--ways x --shots)"
            )
    else:
        from .solution_distance import run

        settings |= {
            "shots": args.shots or sampler.images.shape[1],
            "optimizer": args.optimizer,
            "lr": args.lr or (config.lr if args.optimizer == "adam" else FLOW_STEP),
            "loss_threshold": args.loss_threshold,
            "max_steps": args.max_steps,
        }
    check_shots(sampler, settings["shots"])
    command = command_line(args.argv)
    run(sampler, split, starts, settings, device=args.device, out=args.out, plot=args.plot, command=command)
    return 0


def run_sine(parser, args) -> int:
    """`sine`: train the sine-wave toy's starts into --out, evaluate them, and export them with --bundle."""
    from .sine import run
    from .sine_export import check_bundle_out, export_sine_bundle

    config = SINE_PRESETS[args.preset].updated(
        meta_iters=args.meta_iters, seed=args.seed, eval_tasks=args.eval_tasks, eval_seed=args.eval_seed
    )
    if args.bundle:
        check_bundle_out(args.bundle, args.force)  # found now, not after training
    checkpoint, evaluation = run(config, args.out, command_line(args.argv), show_progress=not args.no_progress)
    if args.bundle:
        export_sine_bundle(checkpoint, evaluation, args.bundle, force=args.force)
    print(f"done: {args.out}" + (f" and {args.bundle}" if args.bundle else ""))
    return 0


def main(argv=None) -> int:
    """Parse the command line and run the subcommand; 2 with a one-line error for bad config or data."""
    parser = build_parser(__doc__)
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
        if args.command in ("gradient-alignment", "solution-distance"):
            return run_start_measurement(parser, args)
        if args.command == "sine":
            return run_sine(parser, args)
        if args.command == "evaluate-bundle":
            return run_evaluate_bundle(parser, args)
        return run_evaluate(parser, args)
    except ValueError as error:  # config/data problems: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
