"""MODEL_CARD.md: the bundle's human-readable card, rendered from model.json (standard library only).

The card is never edited by hand: export and `evaluate-bundle --record` rewrite it, and its sha256,
whenever the manifest changes.
"""

import json
from pathlib import Path

from .files import sha256_file, write_atomic
from .format import CARD_FILE, MANIFEST_FILE, REGRESSION, task_kind


def _resumed(sessions: list) -> str:
    """ ", resumed n times (...)" when the run was resumed, else ""."""
    n = len(sessions) - 1
    return f", resumed {n} time{'s' if n != 1 else ''} (every session's command is in model.json)" if n > 0 else ""


def _hours(seconds) -> str:
    """A wall time in hours and seconds, or "unknown"."""
    return f"{seconds / 3600:.1f} h ({seconds:.0f} s of training, evaluation and checkpoints)" if seconds else "unknown"


def _markdown_value(value) -> str:
    """A string as is, anything else as inline-code JSON."""
    return f"`{json.dumps(value)}`" if not isinstance(value, str) else value


def _trained_how(manifest: dict) -> str:
    """How the initialization was made: meta-training, or (algorithm "joint", training/baseline.py)
    the paper's no-meta-learning baseline, or with 0 steps the random initialization both start from."""
    prov = manifest["provenance"]
    config = prov["training_config"]
    if config["algorithm"] != "joint":
        return (
            f"meta-trained with {config['algorithm']} (Nichol et al. 2018) on {config['dataset']} "
            f"{manifest['trained_ways']}-way tasks"
        )
    head = f"a fresh {manifest['trained_ways']}-way head (Glorot-uniform, zero bias, seed {config['seed']})"
    if prov["iteration"] == 0:
        return (
            f"not trained at all: the random initialization (seed {config['seed']}) that meta-training and "
            f"joint training start from, with {head}; a comparison without meta-learning"
        )
    return (
        f"trained without meta-learning: {prov['iteration']} steps of joint training (mini-batch Adam on "
        f"the cross-entropy) over all of {config['dataset']}'s meta-training classes at once, the paper's "
        f"baseline (training/baseline.py), then given {head}"
    )


def render_model_card(manifest: dict, directory: Path | None = None) -> str:
    """MODEL_CARD.md, generated from model.json (never edited by hand); directory: the bundle's, for
    the test character list."""
    if task_kind(manifest) == REGRESSION:
        return _regression_card(manifest)
    arch, prov, adapt = manifest["architecture"], manifest["provenance"], manifest["adaptation"]
    lines = [f"# Model card: {manifest['name']}", ""]
    if manifest.get("warning"):
        lines += [f"> **WARNING: {manifest['warning']}.** This bundle is for testing the pipeline only.", ""]
    lines += [
        "Generated from `model.json` by `python -m training export`; do not edit by hand.",
        "",
        "## What it is",
        "",
        f"A {arch['layers']}-layer CNN ({arch['filters']} filters, 3x3 stride-2 convolutions without bias, "
        f"BatchNorm with batch statistics, ReLU, linear head) {_trained_how(manifest)}. It is an "
        f"*initialization*: it is fine-tuned on a user's "
        f"{manifest['classes']['min']}-{manifest['classes']['max']} classes with "
        f"{manifest['shots']['min']}-{manifest['shots']['max']} drawings each, then classifies new drawings.",
        "",
        "## Input",
        "",
        f"`{manifest['input']['shape']}` {manifest['input']['dtype']} in [0, 1], {manifest['input']['ink_polarity']}, "
        f"made by preprocessing spec v{manifest['input']['preprocessing_spec']} (docs/preprocessing.md). "
        f"Batches need at least {manifest['batch']['min']} images (BatchNorm uses batch statistics).",
        "",
        "## Adaptation defaults",
        "",
        f"- optimizer: {adapt['optimizer']}, steps: {adapt['steps']}, lr: {adapt['lr']}, batch: {adapt['batch']}",
        f"- Adam state: {adapt['adam_state']} (adam_t = {manifest['weights']['adam_t']})",
        f"- prediction: {'transductive' if adapt['transductive'] else 'non-transductive'} ({adapt['prediction']})",
        f"- chosen by: **{adapt['chosen_by']}**",
        f"- head for C classes: {manifest['head_extension']['description']}",
        "",
        "## Accuracy",
        "",
    ]
    lines += _accuracy_lines(manifest.get("accuracy"))
    lines += ["", "## None of these (open-set score)", ""] + _open_set_lines(manifest.get("open_set"))
    command = _markdown_value(prov["command"]) if prov["command"] else "unknown (no config.json beside the checkpoint)"
    lines += [
        "",
        "## Training",
        "",
        f"- iterations: {prov['iteration']} of {prov['meta_iters']}"
        + ("" if manifest["training_complete"] else " (**incomplete**)"),
        f"- command: {command}" + _resumed(prov.get("sessions") or []),
        f"- trained on: {prov.get('training_device') or 'unknown'}; wall time {_hours(prov.get('elapsed_s'))}",
        f"- config: `{json.dumps(prov['training_config'])}`",
        f"- data sha256: `{json.dumps(prov['data_sha256'])}`",
        f"- code: {prov['code']['git_commit']} (dirty: {prov['code']['dirty']})",
        f"- versions: `{json.dumps(prov['versions'])}`",
        f"- checkpoint: {prov['checkpoint']} (sha256 {prov['checkpoint_sha256']})",
        "",
        "## Limitations",
        "",
        "- Handwritten-character-like drawings only; anything else is out of distribution.",
        "- BatchNorm always uses the statistics of the batch it is given, so a prediction depends on what "
        "else is in the batch; the documented prediction procedure fixes that batch.",
        "",
    ]
    lines += _files_lines(manifest)
    lines += ["", "## Held-out test characters", ""] + _test_class_lines(manifest, directory)
    return "\n".join(lines) + "\n"


def _files_lines(manifest: dict) -> list:
    """The card's "Files" section: every file of the bundle with its size and sha256."""
    rows = [f"| {name} | {entry['bytes']} | `{entry['sha256']}` |" for name, entry in manifest["files"].items()]
    return ["## Files", "", "| file | bytes | sha256 |", "| --- | ---: | --- |", *rows]


def _regression_card(manifest: dict) -> str:
    """MODEL_CARD.md of a regression bundle (model.json `task` = "regression")."""
    arch, prov, adapt = manifest["architecture"], manifest["provenance"], manifest["adaptation"]
    tasks = manifest["tasks"]
    lines = [f"# Model card: {manifest['name']}", ""]
    if manifest.get("warning"):
        lines += [f"> **WARNING: {manifest['warning']}.** This bundle is for testing the pipeline only.", ""]
    lines += [
        f"Generated from `model.json` by `{prov['exported_by']}`; do not edit by hand.",
        "",
        "## What it is",
        "",
        f"A {' -> '.join(map(str, arch['layers']))} {arch['activation']} network for {tasks['source']}: each task "
        f"is a wave {tasks['family']}, {tasks['description']}. The bundle holds {len(manifest['weights']['sets'])} "
        "starts of the same network (weight sets), each adapted to a few points of a new wave by plain SGD on the "
        "mean squared error:",
        "",
    ]
    lines += [f"- `{name}`: {about}" for name, about in manifest["weights"]["sets"].items()]
    lines += [
        "",
        "## Input and adaptation defaults",
        "",
        f"`x` {manifest['input']['dtype']} `{json.dumps(manifest['input']['shape'])}` "
        f"(N >= {manifest['batch']['min']} points), "
        f"trained on x in {manifest['input']['range']}; the loss is the {arch['loss']}.",
        "",
        f"- optimizer: {adapt['optimizer']}, steps: {adapt['steps']}, lr: {adapt['lr']}, batch: {adapt['batch']}",
        f"- chosen by: **{adapt['chosen_by']}**",
        "",
        "## Evaluation",
        "",
    ]
    evaluation = manifest.get("evaluation")
    if evaluation:
        lines += [evaluation["procedure"] + ".", "", *evaluation_table(evaluation), ""]
        lines.append(
            f"Mean squared error ± its standard error. Measured with `{evaluation['command']}` ({evaluation['host']}, "
            f"{evaluation['measured_at']}, {evaluation['wall_s']:.0f} s)."
        )
    else:
        lines.append("Not measured.")
    lines += [
        "",
        "## Training",
        "",
        f"- meta-iterations: {prov['meta_iters']}",
        f"- command: {_markdown_value(prov['command'])}",
        f"- trained on: {prov['training_device']}; {', '.join(f'{k} {v:.0f} s' for k, v in prov['elapsed_s'].items())}",
        f"- config: `{json.dumps(prov['training_config'])}`",
        f"- code: {prov['code']['git_commit']} (dirty: {prov['code']['dirty']})",
        f"- versions: `{json.dumps(prov['versions'])}`",
        f"- checkpoint: {prov['checkpoint']} (sha256 {prov['checkpoint_sha256']})",
        "",
        "## Limitations",
        "",
        f"- Waves of this family only; x outside {manifest['input']['range']} is extrapolation.",
        "",
    ]
    lines += _files_lines(manifest)
    return "\n".join(lines) + "\n"


def evaluation_table(evaluation: dict) -> list:
    """A regression bundle's evaluation as Markdown table lines: a row per start and K (points adapted
    on), a column per number of SGD steps, each cell the mean squared error ± its standard error."""
    steps = sorted({r["steps"] for r in evaluation["results"]})
    rows = {}
    for r in evaluation["results"]:
        rows.setdefault((r["start"], r["shots"]), {})[r["steps"]] = f"{r['mse']:.3f} ± {r['se']:.3f}"
    lines = [
        "| start | K | " + " | ".join(f"{s} step{'' if s == 1 else 's'}" for s in steps) + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in steps) + " |",
    ]
    lines += [f"| {start} | {shots} | " + " | ".join(c[s] for s in steps) + " |" for (start, shots), c in rows.items()]
    return lines


def _accuracy_lines(accuracy: dict | None) -> list:
    """The card's accuracy section: a table of the recorded results, or how to measure them."""
    if not accuracy:
        return ["Not measured yet (`python -m training evaluate-bundle` measures it and records it here)."]
    lines = [
        accuracy["procedure"],
        "",
        "| setting | non-transductive | transductive | tasks |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in accuracy["results"]:
        cells = [
            f"{100 * row[mode]['accuracy']:.2f} ± {100 * row[mode]['ci95']:.2f} %"
            for mode in ("non_transductive", "transductive")
        ]
        lines.append(f"| {row['ways']}-way {row['shots']}-shot | {cells[0]} | {cells[1]} | {row['tasks']} |")
    return lines + [
        "",
        f"± is the half-width of the 95 % confidence interval. Measured with "
        f"`{accuracy['command']}` ({accuracy['runtime']}, {accuracy['measured_at']}, "
        f"{accuracy['wall_s']:.0f} s).",
    ]


def _open_set_lines(section: dict | None) -> list:
    """The card's open-set section: how a query is flagged, how that was fitted, the held-out figures."""
    if not section:
        return ["None: this bundle flags no query as unlike every class (`python -m tools.fit_open_set` fits one)."]
    lines = [
        "Each answer carries an *unknown score* in (0, 1), higher = less like any of the task's classes: a "
        "logistic combination of 1 - the largest probability and, for every conv block, 1 - the largest "
        "cosine similarity between the query's output and a class mean, flat and averaged per channel "
        "(bundle/open_set.py). A query is flagged *none of these* when its score is above the threshold of "
        f"its setting: {section.get('decision') or 'classes x the fewest examples of any class'}.",
        "",
    ]
    references = section.get("references")
    if references:
        lines += [
            f"The score also reads a bank of {references['shape'][0]} reference drawings in `{references['file']}`: "
            f"{references.get('drawn', 'drawings of training characters')}. Predicted once with the support set, "
            "they give each class the mean and spread of how similar other characters look to it, and the "
            "query's cosines enter as z-scores against them too.",
            "",
        ]
    fitted = section.get("fitted")
    if fitted:
        lines += [
            f"Fitted on {fitted['on']}: one set of weights over every setting, each setting's threshold flagging "
            f"{100 * fitted['inset_rate']:g} % of its in-set queries there. Measured with `{fitted['command']}` "
            f"({fitted['host']}, {fitted['measured_at']}, {fitted['compute_s'] / 60:.0f} min of one core).",
            "",
        ]
    if not section.get("held_out"):
        return lines + ["Not measured on held-out characters."]
    lines += [
        "On held-out characters, per setting: AUROC of the score (novel character / scribble against in-set "
        "queries), the share of each kind flagged, in-set accuracy (the flag does not change the class), and "
        "calibration error of the bars (ECE, 15 bins).",
        "",
        "| setting | tasks | AUROC novel | AUROC scribble | in-set flagged | novel flagged | scribbles flagged "
        "| accuracy | ECE |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in section.get("held_out") or []:
        f = row["flagged"]
        lines.append(
            f"| {row['ways']}-way {row['shots']}-shot | {row['tasks']} | {row['auroc_novel']:.3f} | "
            f"{row['auroc_scribble']:.3f} | {100 * f['inset']:.1f} % | {100 * f['novel']:.1f} % | "
            f"{100 * f['scribble']:.1f} % | {100 * row['accuracy']:.2f} % | {row['ece']:.4f} |"
        )
    return lines


def _test_class_lines(manifest: dict, directory: Path | None) -> list:
    """The card's held-out characters section, with the list when the bundle's file is at hand."""
    entry = manifest.get("test_classes")
    if not entry:
        return ["Not recorded: the checkpoint had no test_classes.txt beside it."]
    lines = [f"{entry['count']} characters ({entry['split']}), one per line in `{entry['file']}`:", ""]
    path = Path(directory) / entry["file"] if directory else None
    if path and path.is_file():
        lines += (
            ["<details><summary>the list</summary>", "", "```"] + path.read_text().split() + ["```", "", "</details>"]
        )
    return lines


def write_card_and_manifest(directory: Path, manifest: dict) -> None:
    """MODEL_CARD.md from the manifest, its sha256 into the manifest, then model.json (each file
    written whole and renamed into place, so a reader never sees half of either)."""
    directory = Path(directory)
    card = directory / CARD_FILE
    write_atomic(card, render_model_card(manifest, directory))
    manifest["files"][CARD_FILE] = {"sha256": sha256_file(card), "bytes": card.stat().st_size}
    write_atomic(directory / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
