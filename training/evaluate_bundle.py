"""N-way K-shot accuracy of an exported bundle, measured by running its ONNX graphs (not torch).

The procedure is the demo's: the bundle's default adaptation (its optimizer, steps and lr, the
whole support set as the batch at every step, Adam continuing from the carried state), then
prediction both ways from the same fine-tuned weights -- non-transductive (each query in one batch
with the support set) and transductive (all queries in one batch). Tasks are drawn from the
characters listed in the bundle's own test_classes.txt, found by name in the dataset, so the
figure can be re-measured by anyone from the bundle and the Omniglot zips alone. evaluate_settings
runs the `evaluate-bundle` command: several settings, one process each when asked (the same figures).
"""

import contextlib
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path
from queue import Empty

import numpy as np

from bundle import Bundle

from .scores import MODE_NAMES, summarize
from .tasks import TaskSampler

MODES = {name: transductive for transductive, name in MODE_NAMES.items()}  # name -> transductive


def test_sampler(bundle: Bundle, data_dir=None, download: bool = True) -> TaskSampler:
    """A task sampler over the bundle's held-out characters (Omniglot), found by name."""
    from .omniglot import load_omniglot

    entry = bundle.manifest.get("test_classes")
    if not entry:
        raise ValueError(
            f"bundle {bundle.path} lists no test characters (it was exported from a checkpoint "
            "without test_classes.txt beside it), so it cannot be evaluated on its held-out set"
        )
    names = (bundle.path / entry["file"]).read_text().split()
    omniglot = load_omniglot(data_dir, download_missing=download)
    index = {name: i for i, name in enumerate(omniglot.names)}
    unknown = [n for n in names if n not in index]
    if unknown:
        raise ValueError(
            f"{len(unknown)} of the bundle's test characters are not in the dataset "
            f"(first: {unknown[0]}); is it the Omniglot the model was trained on?"
        )
    return TaskSampler(omniglot.images[[index[n] for n in names]][:, :, None])


def score_task(bundle: Bundle, images: np.ndarray) -> dict:
    """images uint8 [ways, shots + 1, 1, H, W] (the last drawing of each class is its query) ->
    {mode: fraction of the ways queries predicted right}, both modes from one fine-tuning."""
    ways, drawings = images.shape[:2]
    pixels = images.astype(np.float32) / 255.0
    support = pixels[:, :-1].reshape(ways * (drawings - 1), *pixels.shape[2:])
    labels = np.repeat(np.arange(ways), drawings - 1)
    queries = pixels[:, -1]
    result = bundle.adapt(support, labels, queries, transductive=False, classes=ways)
    _, together = bundle.predict(result.params, queries)
    truth = np.arange(ways)
    return {
        "non_transductive": float((result.predictions == truth).mean()),
        "transductive": float((together.argmax(-1) == truth).mean()),
    }


def evaluate_bundle(
    bundle: Bundle, sampler: TaskSampler, rng: np.random.Generator, *, ways: int, shots: int, tasks: int, progress=None
) -> dict:
    """-> {mode: training.scores.EvalResult} over `tasks` random tasks (the same tasks for both modes)."""
    scores = {mode: [] for mode in MODES}
    for _ in range(tasks):
        images, _ = sampler.sample(rng, 1, ways, shots + 1)
        for mode, score in score_task(bundle, images[0]).items():
            scores[mode].append(score)
        if progress:
            progress(1)
    return {mode: summarize(values) for mode, values in scores.items()}


def setting_rng(seed: int, ways: int, shots: int) -> np.random.Generator:
    """One generator per setting, so a setting's tasks depend neither on which settings ran before it
    nor on whether they ran in this process or another (--jobs)."""
    return np.random.default_rng([seed, ways, shots])


def evaluate_setting(
    bundle_dir: Path, data_dir, seed: int, ways: int, shots: int, tasks: int, progress_queue=None
) -> dict:
    """evaluate_bundle for one setting in a process of its own (--jobs): its own bundle and sampler.
    Each task done is reported as ((ways, shots), 1) on `progress_queue` (a task takes far longer than a put)."""
    from bundle import load_bundle

    bundle = load_bundle(bundle_dir, threads=1)
    progress = (lambda count: progress_queue.put(((ways, shots), count))) if progress_queue else None
    return evaluate_bundle(
        bundle,
        test_sampler(bundle, data_dir, download=False),
        setting_rng(seed, ways, shots),
        ways=ways,
        shots=shots,
        tasks=tasks,
        progress=progress,
    )


def _result_with_progress(future, progress_queue, bars: dict):
    """A worker's result, moving the progress bars with what the workers report meanwhile."""
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


def evaluate_settings(
    bundle: Bundle,
    settings: list,
    *,
    data_dir=None,
    seed: int = 1,
    tasks: int,
    jobs: int = 1,
    show_progress: bool = True,
    on_result=None,
    record_command: str | None = None,
) -> dict:
    """evaluate_bundle for each (ways, shots) in `settings`, `jobs` of them at once in processes of their own
    (the same tasks and results as one process) -> {(ways, shots): {mode: EvalResult}}.

    on_result(ways, shots, {mode: EvalResult}) is called as each setting's figures are known, while the
    progress bars are on stderr (write with tqdm.write). With record_command, the figures and that
    command go into the bundle's model.json and MODEL_CARD.md."""
    from tqdm import tqdm

    sampler = test_sampler(bundle, data_dir)
    started = time.perf_counter()
    results = {}
    with contextlib.ExitStack() as stack:
        futures = progress_queue = None
        bars = {}
        if show_progress:
            bars = {
                (ways, shots): stack.enter_context(
                    tqdm(total=tasks, desc=f"{ways}-way {shots}-shot", unit="task", file=sys.stderr, position=i)
                )
                for i, (ways, shots) in enumerate(settings)
            }
        if jobs > 1 and len(settings) > 1:
            # spawn, not fork: this process already holds onnxruntime sessions and their threads
            context = multiprocessing.get_context("spawn")
            pool = stack.enter_context(ProcessPoolExecutor(min(jobs, len(settings)), mp_context=context))
            if bars:  # the workers report tasks done through a queue, so every setting's bar moves
                progress_queue = stack.enter_context(context.Manager()).Queue()
            futures = {
                (ways, shots): pool.submit(
                    evaluate_setting, bundle.path, data_dir, seed, ways, shots, tasks, progress_queue
                )
                for ways, shots in settings
            }
        for ways, shots in settings:
            if futures:
                results[ways, shots] = _result_with_progress(futures[ways, shots], progress_queue, bars)
            else:
                bar = bars.get((ways, shots))
                results[ways, shots] = evaluate_bundle(
                    bundle,
                    sampler,
                    setting_rng(seed, ways, shots),
                    ways=ways,
                    shots=shots,
                    tasks=tasks,
                    progress=bar.update if bar else None,
                )
            if on_result:
                on_result(ways, shots, results[ways, shots])
    if record_command is not None:
        record = accuracy_record(
            bundle, results, seed=seed, command=record_command, wall_s=time.perf_counter() - started
        )
        record_accuracy(bundle.path, record)
    return results


def accuracy_record(bundle: Bundle, results: dict, *, seed: int, command: str, wall_s: float) -> dict:
    """The manifest's `accuracy` entry. results: {(ways, shots): {mode: EvalResult}}."""
    import onnxruntime

    defaults = bundle.defaults
    return {
        "procedure": (
            f"Tasks of held-out characters (test_classes.txt), one query per class; the bundle's default "
            f"adaptation ({defaults['optimizer']}, {defaults['steps']} steps at lr {defaults['lr']}, the "
            f"whole support set as the batch, from the carried Adam state), run with the bundle's ONNX "
            f"graphs; both prediction modes score the same fine-tuned weights. Task seed {seed}."
        ),
        "results": [
            {
                "ways": ways,
                "shots": shots,
                "tasks": by_mode["transductive"].tasks,
                **{mode: {"accuracy": r.accuracy, "ci95": r.ci95} for mode, r in by_mode.items()},
            }
            for (ways, shots), by_mode in results.items()
        ],
        "adaptation": {k: defaults[k] for k in ("optimizer", "steps", "lr")},
        "seed": seed,
        "command": command,
        "runtime": f"onnxruntime {onnxruntime.__version__} (CPU)",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": wall_s,
    }


def record_accuracy(bundle_dir: Path, accuracy: dict) -> None:
    """Write `accuracy` into the bundle's model.json and regenerate MODEL_CARD.md (its sha256 too)."""
    import json

    from bundle import MANIFEST_FILE, write_card_and_manifest

    manifest = json.loads((Path(bundle_dir) / MANIFEST_FILE).read_text())
    manifest["accuracy"] = accuracy
    write_card_and_manifest(Path(bundle_dir), manifest)
