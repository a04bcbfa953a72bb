"""Export a checkpoint as a *bundle* (docs/bundle.md): ONNX graphs + weights + manifest + model card.

The bundle is what the server (onnxruntime) and the browser (onnxruntime-web) run; neither
imports torch. Three plain single-model graphs, all with a dynamic batch B >= 2 and a dynamic
class count C >= 2 (the head's weight [C, F] and bias [C] are graph inputs):

  predict.onnx           parameters, images [B,1,28,28]                  -> logits [B,C], probabilities [B,C]
  train_step_sgd.onnx    parameters, images, labels int64 [B], lr        -> updated parameters, loss
  train_step_adam.onnx   parameters, adam v, images, labels, lr, t, eps  -> updated parameters, updated v, loss

The train steps are traced as: torch.func.grad_and_value of the summed cross-entropy ->
make_fx(tracing_mode="symbolic") with the core ATen decompositions plus hand-written ones of
aten.convolution_backward (onnx has no such op) and aten.threshold_backward -> torch.onnx.export(dynamo=True),
opset 18. eps is a graph input because the exporter's optimizer drops constants <= 1e-8.
"""

import json
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.fx.experimental.proxy_tensor import make_fx

from bundle import sha256_file

from .checkpoint import load_checkpoint
from .model import BN_EPS, ModelSpec, conv_block, init_params
from .omniglot import NUM_TRAIN_CHARACTERS
from .presets import Config

FORMAT = "reptile-bundle"
FORMAT_VERSION = 1
OPSET = 18
ADAM_BETA2 = 0.999  # InnerAdam's default; meta-training never changes it
ADAM_EPS = 1e-8
CLASSES_RANGE = (2, 10)
SHOTS_RANGE = (1, 5)
GRAPH_FILES = {
    "predict": "predict.onnx",
    "train_step_sgd": "train_step_sgd.onnx",
    "train_step_adam": "train_step_adam.onnx",
}
WEIGHTS_FILE = "weights.safetensors"
MANIFEST_FILE = "model.json"
CARD_FILE = "MODEL_CARD.md"
TEST_CLASSES_FILE = "test_classes.txt"  # the run's held-out characters, so anyone can re-evaluate the bundle
ADAM_V_PREFIX = "adam_v."
UPDATED_PREFIX = "updated."
CODE_PATHS = ("training", "preprocessing", "bundle")  # the code that defines a bundle (for the dirty flag)

aten = torch.ops.aten


# ----------------------------------------------------------------------------- the single model


def single_forward(spec: ModelSpec, params, images: torch.Tensor) -> torch.Tensor:
    """One model (no group axis): params as from init_params, images [B, C, H, W] -> logits [B, classes].

    training/model.py's layers (conv_block) without its group axis: its grouped forward with G = 1
    traces into ~80 extra reshape/squeeze nodes, which cost onnxruntime more time per step than the
    arithmetic they wrap (tests/test_export.py checks the two agree)."""
    h = images
    for layer in range(spec.layers):
        h = conv_block(spec, h, *params[3 * layer : 3 * layer + 3])
    return h.reshape(h.shape[0], -1) @ params[-2].t() + params[-1]


def single_loss(spec: ModelSpec, params, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the batch (as training minimises it) -> scalar."""
    return F.cross_entropy(single_forward(spec, params, images), labels, reduction="sum")


def convolution_backward(
    grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed, output_padding, groups, output_mask
):
    """aten.convolution_backward as ops onnxruntime runs well (ONNX has no convolution-backward op).

    input grad: the transposed convolution of grad_output with the same weight (output_padding makes
    it land on the input's size). weight grad: one matrix product of grad_output [Cout, B*Ho*Wo] with
    the input's patches [Cin*k*k, B*Ho*Wo], the patches cut by a depthwise convolution with one-hot
    kernels. (A convolution over the batch with batch and channel axes swapped, as autograd does it,
    is the same sum, but onnxruntime runs it as one small product per input channel, over a dilated
    kernel wider than the weight.) bias grad: a sum (our convolutions have none)."""
    if transposed or groups != 1:
        raise NotImplementedError("only plain (groups=1, not transposed) convolutions are decomposed")
    grad_input = grad_weight = grad_bias = None
    kernel = weight.shape[2:]
    if output_mask[0]:
        extra = [
            input.shape[2 + i]
            - ((grad_output.shape[2 + i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel[i] - 1) + 1)
            for i in range(len(kernel))
        ]
        grad_input = aten.convolution(grad_output, weight, None, stride, padding, dilation, True, extra, groups)
    if output_mask[1]:
        out_channels, in_channels = weight.shape[:2]
        taps = int(np.prod(kernel))
        one_hot = torch.eye(taps, dtype=input.dtype).reshape(taps, 1, *kernel).repeat(in_channels, 1, 1, 1)
        patches = aten.convolution(
            input, one_hot, None, stride, padding, dilation, False, [0] * len(kernel), in_channels
        )  # [B, Cin*k*k, Ho, Wo], channel ci*k*k + tap
        rows = patches.permute(0, 2, 3, 1).reshape(-1, in_channels * taps)
        grad_weight = aten.mm(grad_output.transpose(0, 1).reshape(out_channels, -1), rows).reshape(weight.shape)
    if output_mask[2]:
        grad_bias = grad_output.sum([0] + list(range(2, grad_output.dim())))
    return grad_input, grad_weight, grad_bias


def threshold_backward(grad_output, output, threshold):
    """ReLU's backward as a product with the mask: the core decomposition's Where (with a broadcast
    scalar) is onnxruntime's slowest elementwise kernel here."""
    return grad_output * (output > threshold).to(grad_output.dtype)


def _decompositions() -> dict:
    table = dict(torch._decomp.core_aten_decompositions())
    table[aten.convolution_backward.default] = convolution_backward
    table[aten.threshold_backward.default] = threshold_backward
    return table


def adam_update(params, grads, v, lr, t, eps, beta2: float = ADAM_BETA2):
    """training.reptile.InnerAdam.step, out of place, with lr/t/eps as tensors (same operation order):
    v <- beta2 v + (1 - beta2) g^2;  theta <- theta - lr sqrt(1 - beta2^t) g / (sqrt(v) + eps).
    The step size lr sqrt(1 - beta2^t) is computed in float64, as InnerAdam computes it in Python."""
    step = (lr.double() * torch.sqrt(1.0 - torch.pow(beta2, t.double()))).float()
    new_v = [x * beta2 + (1.0 - beta2) * g * g for x, g in zip(v, grads, strict=False)]
    new_params = [p + (-step * g) / (torch.sqrt(x) + eps) for p, g, x in zip(params, grads, new_v, strict=False)]
    return new_params, new_v


# ----------------------------------------------------------------------------- the graphs


def graph_signatures(spec: ModelSpec) -> dict:
    """Input and output names/shapes/dtypes of the three graphs ("B" = batch, "C" = classes)."""
    names = spec.param_names()
    shapes = [list(s) for s in _param_shapes(spec, "C")]
    params = [{"name": n, "shape": s, "dtype": "float32"} for n, s in zip(names, shapes, strict=False)]
    adam_v = [{"name": ADAM_V_PREFIX + n, "shape": s, "dtype": "float32"} for n, s in zip(names, shapes, strict=False)]
    images = {"name": "images", "shape": ["B", spec.channels, spec.image_size, spec.image_size], "dtype": "float32"}
    labels = {"name": "labels", "shape": ["B"], "dtype": "int64"}

    def scalar(name):
        return {"name": name, "shape": [], "dtype": "float32"}

    def updated(entries):
        return [dict(e, name=UPDATED_PREFIX + e["name"]) for e in entries]

    return {
        "predict": {
            "inputs": params + [images],
            "outputs": [
                {"name": "logits", "shape": ["B", "C"], "dtype": "float32"},
                {"name": "probabilities", "shape": ["B", "C"], "dtype": "float32"},
            ],
        },
        "train_step_sgd": {
            "inputs": params + [images, labels, scalar("lr")],
            "outputs": updated(params) + [scalar("loss")],
        },
        "train_step_adam": {
            "inputs": params + adam_v + [images, labels, scalar("lr"), scalar("t"), scalar("eps")],
            "outputs": updated(params) + updated(adam_v) + [scalar("loss")],
        },
    }


def _param_shapes(spec: ModelSpec, classes):
    shapes = [tuple(p.shape) for p in init_params(spec, torch.Generator().manual_seed(0))]
    shapes[-2] = (classes,) + shapes[-2][1:]
    shapes[-1] = (classes,)
    return shapes


def _graph_function(spec: ModelSpec, kind: str):
    n = len(spec.param_names())

    def loss_fn(params, images, labels):
        return single_loss(spec, params, images, labels)

    if kind == "predict":

        def fn(*args):
            logits = single_forward(spec, args[:n], args[n])
            return logits, torch.softmax(logits, dim=-1)
    elif kind == "train_step_sgd":

        def fn(*args):
            params, images, labels, lr = args[:n], args[n], args[n + 1], args[n + 2]
            grads, loss = torch.func.grad_and_value(loss_fn)(params, images, labels)
            return tuple(p - lr * g for p, g in zip(params, grads, strict=False)) + (loss,)
    elif kind == "train_step_adam":

        def fn(*args):
            params, v = args[:n], args[n : 2 * n]
            images, labels, lr, t, eps = args[2 * n : 2 * n + 5]
            grads, loss = torch.func.grad_and_value(loss_fn)(params, images, labels)
            new_params, new_v = adam_update(params, grads, v, lr, t, eps)
            return tuple(new_params) + tuple(new_v) + (loss,)
    else:
        raise ValueError(f"unknown graph {kind!r}")
    return fn


def _example_inputs(spec: ModelSpec, kind: str, batch: int = 6, classes: int = 3) -> list:
    generator = torch.Generator().manual_seed(0)
    params = init_params(spec, generator)
    params[-2] = torch.randn(classes, params[-2].shape[1], generator=generator) * 0.01
    params[-1] = torch.zeros(classes)
    images = torch.rand(batch, spec.channels, spec.image_size, spec.image_size, generator=generator)
    labels = torch.arange(batch) % classes
    scalar = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    if kind == "predict":
        return params + [images]
    if kind == "train_step_sgd":
        return params + [images, labels, scalar(1e-3)]
    return (
        params
        + [torch.full_like(p, 1e-6) for p in params]
        + [images, labels, scalar(1e-3), scalar(1.0), scalar(ADAM_EPS)]
    )


def strip_model(model) -> None:
    """Drop what only debugging needs (doc strings, per-node metadata such as source stack traces,
    intermediate value_info): a few hundred KB of text otherwise."""
    model.doc_string = ""
    del model.metadata_props[:]
    graphs = [model.graph] + [a.g for node in model.graph.node for a in node.attribute if a.g.node]
    for graph in graphs:
        graph.doc_string = ""
        del graph.value_info[:]
        for node in graph.node:
            node.doc_string = ""
            del node.metadata_props[:]
    for function in model.functions:
        function.doc_string = ""
        for node in function.node:
            node.doc_string = ""
            del node.metadata_props[:]


def export_graph(spec: ModelSpec, kind: str, path: Path) -> None:
    """Trace one graph and write it, stripped, to path."""
    import onnx
    from torch.export import Dim

    signature = graph_signatures(spec)[kind]
    fn = _graph_function(spec, kind)
    example = _example_inputs(spec, kind)
    traced = make_fx(fn, decomposition_table=_decompositions(), tracing_mode="symbolic")(*example)
    batch, classes = Dim("batch", min=2), Dim("classes", min=2)
    dims = {"B": batch, "C": classes}
    dynamic_shapes = tuple(
        {axis: dims[d] for axis, d in enumerate(entry["shape"]) if isinstance(d, str)} for entry in signature["inputs"]
    )
    import logging
    import warnings

    registration_log = logging.getLogger(
        "torch.onnx._internal.exporter._registration"
    )  # "torchvision is not installed"
    level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                traced,
                tuple(example),
                dynamic_shapes=dynamic_shapes,
                dynamo=True,
                input_names=[e["name"] for e in signature["inputs"]],
                output_names=[e["name"] for e in signature["outputs"]],
                opset_version=OPSET,
                verbose=False,
                report=False,
            )
    finally:
        registration_log.setLevel(level)
    model = program.model_proto
    strip_model(model)
    onnx.checker.check_model(model)
    got_inputs = [i.name for i in model.graph.input]
    got_outputs = [o.name for o in model.graph.output]
    if got_inputs != [e["name"] for e in signature["inputs"]] or got_outputs != [
        e["name"] for e in signature["outputs"]
    ]:
        raise RuntimeError(f"{kind}: the exported graph's inputs/outputs are not the declared ones")
    Path(path).write_bytes(model.SerializeToString())
    _check_graph(path, kind, fn, example)


def _check_graph(path: Path, kind: str, fn, example: list, tolerance: float = 1e-4) -> None:
    """Run the written graph in onnxruntime on the example inputs and compare with eager torch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), example, strict=False)}
    got = session.run(None, feed)
    with torch.no_grad() if kind == "predict" else torch.enable_grad():
        expected = [x.detach().numpy() for x in fn(*example)]
    for output, a, b in zip(session.get_outputs(), got, expected, strict=False):
        error = float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))
        if a.shape != b.shape or not error <= tolerance:
            raise RuntimeError(f"{kind}: onnxruntime disagrees with torch on {output.name} (error {error:.2e})")


# ----------------------------------------------------------------------------- the bundle


def _git(*args, cwd: Path) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def code_version() -> dict:
    root = Path(__file__).resolve().parent.parent
    commit = _git("rev-parse", "HEAD", cwd=root)
    status = _git("status", "--porcelain", "--", *CODE_PATHS, cwd=root)
    return {
        "git_commit": commit,
        "dirty": None if status is None else bool(status),
        "dirty_means": f"uncommitted changes under {', '.join(p + '/' for p in CODE_PATHS)} at export time",
    }


def _versions() -> dict:
    import onnx
    import onnxscript

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "opset": OPSET,
    }
    try:
        import onnxruntime

        versions["onnxruntime_used_to_check"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions


def short_run_warning(iteration: int, meta_iters: int) -> str | None:
    if iteration < meta_iters:
        return f"trained for only {iteration} of {meta_iters} meta-iterations: not the real model"
    return None


def build_manifest(
    payload: dict,
    checkpoint_path: Path,
    name: str,
    files: dict,
    run_config: dict | None,
    adaptation: dict | None = None,
) -> dict:
    config = Config.from_dict(payload["config"])
    spec = ModelSpec(**payload["spec"])
    iteration = int(payload["iteration"])
    warning = short_run_warning(iteration, config.meta_iters)
    signatures = graph_signatures(spec)
    data_hashes = {k: v for k, v in (run_config or {}).items() if k.endswith("_sha256")}
    # train.py records every start and resume of the run: the first is the training command
    sessions = list((run_config or {}).get("sessions") or [])
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "warning": warning,
        "training_complete": warning is None,
        "architecture": {
            **spec.to_dict(),
            "feature_size": spec.feature_size(),
            "conv_bias": False,
            "batch_norm": {"statistics": "batch (training mode, always)", "eps": BN_EPS},
            "loss": "cross-entropy summed over the batch",
            "parameters": [{"name": n, "shape": list(s)} for n, s in zip(spec.param_names(), _param_shapes(spec, "C"), strict=False)],
        },
        "input": {
            "name": "images",
            "shape": ["B", spec.channels, spec.image_size, spec.image_size],
            "layout": "NCHW",
            "dtype": "float32",
            "range": [0.0, 1.0],
            "ink_polarity": "ink = 1.0, background = 0.0",
            "preprocessing_spec": _preprocessing_spec_version(),
        },
        "classes": {"min": CLASSES_RANGE[0], "max": CLASSES_RANGE[1]},
        "shots": {"min": SHOTS_RANGE[0], "max": SHOTS_RANGE[1]},
        "batch": {"min": 2, "why": "BatchNorm uses batch statistics; the graphs are exported for B >= 2"},
        "trained_ways": spec.ways,
        "graphs": {kind: {"file": GRAPH_FILES[kind], "opset": OPSET, **signatures[kind]} for kind in GRAPH_FILES},
        "weights": {
            "file": WEIGHTS_FILE,
            "parameters": "tensor <name> for each name in architecture.parameters (head with trained_ways rows)",
            "adam_v": f"tensor {ADAM_V_PREFIX}<name>: the carried inner-Adam second moment of each parameter",
            "adam_t": int(payload["adam_t"]),
        },
        "optimizers": {
            "sgd": {"rule": "theta <- theta - lr * g"},
            "adam": {
                "beta1": 0.0,
                "beta2": ADAM_BETA2,
                "eps": ADAM_EPS,
                "rule": "v <- beta2 v + (1 - beta2) g^2; theta <- theta - lr sqrt(1 - beta2^t) g / (sqrt(v) + eps)",
                "t": "1-based step number; the first adaptation step uses t = adam_t + 1",
                "beta2_in_graph": "constant",
                "eps_in_graph": "input",
            },
        },
        "adaptation": {
            "optimizer": "adam",
            "steps": (adaptation or {}).get("steps", config.eval_iters),
            "lr": (adaptation or {}).get("lr", config.lr),
            "eps": ADAM_EPS,
            "batch": "the full support set at every step",
            "adam_state": "carried: start from weights adam_v.* and t = adam_t",
            "transductive": config.transductive,
            "prediction": (
                "non-transductive: each query in one batch with the support set (its row is the last); "
                "transductive: all queries in one batch (needs >= 2 queries)"
            ),
            "chosen_by": (adaptation or {}).get("chosen_by", "training config (not yet measured)"),
        },
        "head_extension": {
            "rule": "trained-rows-cycled",
            "description": (
                f"row i of fc.weight and entry i of fc.bias are trained row/entry i mod trained_ways "
                f"({spec.ways}): C <= {spec.ways} takes the first C trained rows (C == {spec.ways}: the "
                "trained head as is), larger C repeats them in turn; likewise for adam_v.fc.weight / "
                "adam_v.fc.bias. Chosen by benchmarks/head_extension.py (docs/results.md)"
            ),
        },
        "files": files,
        "provenance": {
            "checkpoint": str(checkpoint_path),
            "checkpoint_sha256": sha256_file(checkpoint_path),
            "iteration": iteration,
            "meta_iters": config.meta_iters,
            "elapsed_s": payload.get("elapsed_s"),
            "training_config": config.to_dict(),
            "command": sessions[0].get("command") if sessions else None,
            "sessions": sessions or None,
            "run_config_json": "config.json beside the checkpoint" if run_config else None,
            "training_device": ", ".join(
                sorted(
                    {
                        f"{s.get('device')}{' ' + s['gpu'] if s.get('gpu') else ''} "
                        f"({s.get('machine')}, {s.get('threads')} threads)"
                        for s in sessions
                    }
                )
            )
            or None,
            "data_sha256": data_hashes or None,
            "code": code_version(),
            "versions": _versions(),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "test_classes": None,
        "accuracy": None,
    }
    return manifest


def _preprocessing_spec_version() -> int:
    from preprocessing import SPEC_VERSION

    return SPEC_VERSION


def _resumed(sessions: list) -> str:
    n = len(sessions) - 1
    return f", resumed {n} time{'s' if n != 1 else ''} (every session's command is in model.json)" if n > 0 else ""


def _hours(seconds) -> str:
    return f"{seconds / 3600:.1f} h ({seconds:.0f} s of training, evaluation and checkpoints)" if seconds else "unknown"


def _markdown_value(value) -> str:
    return f"`{json.dumps(value)}`" if not isinstance(value, str) else value


def render_model_card(manifest: dict, directory: Path | None = None) -> str:
    """MODEL_CARD.md, generated from model.json (never edited by hand); directory: the bundle's, for
    the test character list."""
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
        f"BatchNorm with batch statistics, ReLU, linear head) meta-trained with "
        f"{prov['training_config']['algorithm']} (Nichol et al. 2018) on {prov['training_config']['dataset']} "
        f"{manifest['trained_ways']}-way tasks. It is an *initialization*: it is fine-tuned on a user's "
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
    lines += [
        "",
        "## Training",
        "",
        f"- iterations: {prov['iteration']} of {prov['meta_iters']}"
        + ("" if manifest["training_complete"] else " (**incomplete**)"),
        f"- command: {_markdown_value(prov['command']) if prov['command'] else 'unknown (no config.json beside the checkpoint)'}"
        + _resumed(prov.get("sessions") or []),
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
        "## Files",
        "",
        "| file | bytes | sha256 |",
        "| --- | ---: | --- |",
    ]
    lines += [f"| {name} | {entry['bytes']} | `{entry['sha256']}` |" for name, entry in manifest["files"].items()]
    lines += ["", "## Held-out test characters", ""] + _test_class_lines(manifest, directory)
    return "\n".join(lines) + "\n"


def _accuracy_lines(accuracy: dict | None) -> list:
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


def _test_class_lines(manifest: dict, directory: Path | None) -> list:
    entry = manifest.get("test_classes")
    if not entry:
        return ["Not recorded: the checkpoint had no test_classes.txt beside it."]
    lines = [f"{entry['count']} characters ({entry['split']}), one per line in `{entry['file']}`:", ""]
    path = directory / entry["file"] if directory else None
    if path and path.is_file():
        lines += (
            ["<details><summary>the list</summary>", "", "```"] + path.read_text().split() + ["```", "", "</details>"]
        )
    return lines


def write_card_and_manifest(directory: Path, manifest: dict) -> None:
    """MODEL_CARD.md from the manifest, its sha256 into the manifest, then model.json (each file
    written whole and renamed into place, so a reader never sees half of either)."""
    card = directory / CARD_FILE
    _replace_text(card, render_model_card(manifest, directory))
    manifest["files"][CARD_FILE] = {"sha256": sha256_file(card), "bytes": card.stat().st_size}
    _replace_text(directory / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


def _replace_text(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(text)
    partial.replace(path)


def _write_weights(path: Path, spec: ModelSpec, payload: dict) -> None:
    from safetensors.numpy import save_file

    names = spec.param_names()
    tensors = {}
    for name, p, v in zip(names, payload["params"], payload["adam_v"], strict=False):
        tensors[name] = p.detach().cpu().to(torch.float32).contiguous().numpy()
        tensors[ADAM_V_PREFIX + name] = v.detach().cpu().to(torch.float32).contiguous().numpy()
    save_file(tensors, str(path), metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})


def _make_readable(directory: Path) -> None:
    """mkdtemp makes a 0700 directory (and safetensors may write 0600 files): give them the usual
    modes under the current umask, so a web server can serve the bundle."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for child in directory.iterdir():
        child.chmod(0o666 & ~umask)


def export_bundle(
    checkpoint: Path,
    out_dir: Path,
    name: str | None = None,
    force: bool = False,
    progress=print,
    adaptation: dict | None = None,
) -> dict:
    """Write the bundle for checkpoint into out_dir (created; an existing bundle there is replaced
    only with force). adaptation: default steps / lr and the measurement that chose them
    ("chosen_by"); without it the training config's evaluation settings. Returns the manifest."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    payload = load_checkpoint(checkpoint)
    spec = ModelSpec(**payload["spec"])
    if len(payload["adam_v"]) != len(payload["params"]):
        raise ValueError(f"{checkpoint} has no Adam state for every parameter")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / MANIFEST_FILE).exists():
            raise ValueError(f"--out {out_dir} is a non-empty directory that is not a bundle; choose another")
        if not force:
            raise ValueError(f"--out {out_dir} already holds a bundle; pass --force to replace it")
    run_config_path = checkpoint.parent / "config.json"
    run_config = json.loads(run_config_path.read_text()) if run_config_path.exists() else None
    name = name or out_dir.name

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_weights(staging / WEIGHTS_FILE, spec, payload)
        for kind, filename in GRAPH_FILES.items():
            started = time.perf_counter()
            export_graph(spec, kind, staging / filename)
            if progress:
                progress(
                    f"{filename}: {(staging / filename).stat().st_size} bytes, {time.perf_counter() - started:.0f} s"
                )
        written = [WEIGHTS_FILE, *GRAPH_FILES.values()]
        if (checkpoint.parent / TEST_CLASSES_FILE).is_file():
            shutil.copyfile(checkpoint.parent / TEST_CLASSES_FILE, staging / TEST_CLASSES_FILE)
            written.append(TEST_CLASSES_FILE)
        files = {f: {"sha256": sha256_file(staging / f), "bytes": (staging / f).stat().st_size} for f in written}
        manifest = build_manifest(payload, checkpoint, name, files, run_config, adaptation)
        if TEST_CLASSES_FILE in files:
            count = len((staging / TEST_CLASSES_FILE).read_text().split())
            manifest["test_classes"] = {
                "file": TEST_CLASSES_FILE,
                "count": count,
                "split": (
                    f"the characters not used in meta-training: all {count + NUM_TRAIN_CHARACTERS} Omniglot characters "
                    f"shuffled with seed {payload['config']['seed']}, the first {NUM_TRAIN_CHARACTERS} for training"
                    if payload["config"]["dataset"] == "omniglot"
                    else "the dataset's test split"
                ),
            }
        write_card_and_manifest(staging, manifest)
        _make_readable(staging)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old")
            if old.exists():
                shutil.rmtree(old)
            out_dir.replace(old)
            staging.replace(out_dir)
            shutil.rmtree(old)
        else:
            staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if manifest["warning"] and progress:
        progress(f"WARNING: {manifest['warning']}")
    return manifest
