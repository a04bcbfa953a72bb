"""Export the sine-wave toy's three starts as one regression bundle (docs/bundle.md, "Regression bundles").

  predict.onnx         parameters, x [N, 1]          -> y [N, 1]
  train_step_sgd.onnx  parameters, x, y [N, 1], lr   -> updated.<parameter> for each, loss (before the step)

N >= 1 is dynamic. The parameters are graph inputs, so the one pair of graphs runs every start; the
weights file holds each start as the tensors "<start>/<parameter>". The graphs are made the way the
classification bundle's are (training/onnx_graphs.py export_function: make_fx, torch.onnx.export at
opset 18, checked against eager torch), from training/sine.py's own forward and loss.
"""

import shutil
import tempfile
import time
from pathlib import Path

import torch

from bundle.card import write_card_and_manifest
from bundle.files import sha256_file
from bundle.format import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_FILE,
    REGRESSION,
    REGRESSION_GRAPH_FILES,
    UPDATED_PREFIX,
    WEIGHT_SET_SEPARATOR,
    WEIGHTS_FILE,
)

from .export import _make_readable, _sorted_metadata, _swap_in
from .manifest import code_version, versions
from .onnx_graphs import OPSET, export_function
from .presets import SINE_PRESETS, SineConfig
from .sine import STARTS, forward, load_starts, mse, param_names, param_shapes, phase_text

START_DESCRIPTIONS = {
    "meta-learned": "Reptile: each meta-iteration one epoch of SGD on a wave's points, the start moved a "
    "fraction (annealed) of the way to the result",
    "joint": "joint training: the same waves, points and SGD steps, never undone (SGD on the expected loss over "
    "all waves, whose minimiser predicts about 0 everywhere): the paper's baseline",
    "random": "the random initialization both others began at (nn.Linear's default, U(+-1/sqrt(fan_in)))",
}


def check_bundle_out(out_dir: Path, force: bool) -> None:
    """ValueError naming --bundle unless out_dir is free (missing or empty) or a bundle that force replaces."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / MANIFEST_FILE).exists():
            raise ValueError(f"--bundle {out_dir} is a non-empty directory that is not a bundle; choose another")
        if not force:
            raise ValueError(f"--bundle {out_dir} already holds a bundle; pass --force to replace it")


def graph_signatures(hidden: int) -> dict:
    """Input and output names/shapes/dtypes of the two graphs ("N" = the number of points)."""
    params = [
        {"name": n, "shape": s, "dtype": "float32"} for n, s in zip(param_names(), param_shapes(hidden), strict=True)
    ]
    x = {"name": "x", "shape": ["N", 1], "dtype": "float32"}
    y = {"name": "y", "shape": ["N", 1], "dtype": "float32"}
    scalar = {"shape": [], "dtype": "float32"}
    return {
        "predict": {"inputs": params + [x], "outputs": [y]},
        "train_step_sgd": {
            "inputs": params + [x, y, {"name": "lr", **scalar}],
            "outputs": [dict(p, name=UPDATED_PREFIX + p["name"]) for p in params] + [{"name": "loss", **scalar}],
        },
    }


def graph_function(kind: str):
    """The function traced for graph `kind`: flat tensors in, in signature order; a tuple out."""
    n = len(param_names())
    if kind == "predict":
        return lambda *args: (forward(list(args[:n]), args[n]),)
    if kind == "train_step_sgd":

        def step(*args):
            params, x, y, lr = list(args[:n]), args[n], args[n + 1], args[n + 2]
            grads, loss = torch.func.grad_and_value(lambda p: mse(p, x, y))(params)
            return tuple(p - lr * g for p, g in zip(params, grads, strict=True)) + (loss,)

        return step
    raise ValueError(f"unknown graph {kind!r}")


def example_inputs(kind: str, hidden: int, points: int = 6) -> list:
    """Deterministic inputs to trace graph `kind` with and to check the written graph on."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=generator) * 0.5 for s in param_shapes(hidden)]
    x = torch.rand(points, 1, generator=generator) * 10 - 5
    if kind == "predict":
        return params + [x]
    return params + [x, torch.sin(x) * 3, torch.tensor(0.02)]


def write_weights(path: Path, starts: dict) -> None:
    """weights.safetensors: every start's parameters as float32 tensors "<start>/<parameter>"."""
    from safetensors.numpy import save

    tensors = {
        name + WEIGHT_SET_SEPARATOR + p_name: p.detach().cpu().float().contiguous().numpy()
        for name in STARTS
        for p_name, p in zip(param_names(), starts[name], strict=True)
    }
    data = save(tensors, metadata={"format": FORMAT, "format_version": str(FORMAT_VERSION)})
    path.write_bytes(_sorted_metadata(data))


def short_run_warning(config: SineConfig) -> str | None:
    """The bundle's warning when the starts were not trained with the preset's settings, else None."""
    preset = SINE_PRESETS["sine"].training_fields()
    changed = {k: v for k, v in config.training_fields().items() if preset[k] != v}
    if not changed:
        return None
    return f"trained with settings other than the preset sine's ({', '.join(f'{k} {v}' for k, v in changed.items())})"


def build_manifest(payload: dict, checkpoint: Path, name: str, files: dict, evaluation: dict) -> dict:
    """model.json of a regression bundle for a sine run's checkpoint payload and its evaluation."""
    config = SineConfig.from_dict(payload["config"])
    signatures = graph_signatures(config.hidden)
    warning = short_run_warning(config)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "task": REGRESSION,
        "warning": warning,
        "training_complete": warning is None,
        "architecture": {
            "layers": [1, config.hidden, config.hidden, 1],
            "activation": "tanh",
            "layer_rule": "h <- tanh(h W^T + b) for each hidden layer, then y = h W^T + b (weights [out, in])",
            "loss": "mean squared error over the points",
            "parameters": [
                {"name": n, "shape": s} for n, s in zip(param_names(), param_shapes(config.hidden), strict=True)
            ],
        },
        "input": {"name": "x", "shape": ["N", 1], "dtype": "float32", "range": [-config.x_max, config.x_max]},
        "tasks": {
            "source": "the sine-wave toy of Nichol et al. 2018, 'On First-Order Meta-Learning Algorithms', section 5.1",
            "family": "y = A sin(x + phase)",
            "description": (
                f"A ~ U[{config.amplitude_min:g}, {config.amplitude_max:g}], phase ~ U[0, {phase_text(config)}], "
                f"x ~ U[-{config.x_max:g}, {config.x_max:g}]"
            ),
            "amplitude": [config.amplitude_min, config.amplitude_max],
            "phase": [0.0, config.phase_max],
            "x": [-config.x_max, config.x_max],
        },
        "batch": {"min": 1},
        "graphs": {
            kind: {"file": REGRESSION_GRAPH_FILES[kind], "opset": OPSET, **signatures[kind]}
            for kind in REGRESSION_GRAPH_FILES
        },
        "weights": {
            "file": WEIGHTS_FILE,
            "naming": f"tensor <set>{WEIGHT_SET_SEPARATOR}<parameter> for each set below and each parameter",
            "sets": {start: START_DESCRIPTIONS[start] for start in STARTS},
            "default_set": STARTS[0],
        },
        "optimizers": {"sgd": {"rule": "theta <- theta - lr * g, g the gradient of the mean squared error"}},
        "adaptation": {
            "optimizer": "sgd",
            "steps": max(config.eval_steps),
            "lr": config.eval_lr,
            "batch": "all the points at every step",
            "chosen_by": "the paper's figure (32 steps on 10 points) and its demo's SGD step size",
        },
        "files": files,
        "provenance": {
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha256_file(checkpoint),
            "meta_iters": config.meta_iters,
            "elapsed_s": payload["elapsed_s"],
            "training_config": config.training_fields(),
            "command": payload["command"],
            "training_device": f"cpu: {payload['host']}",
            "code": code_version(),
            "versions": versions(),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "exported_by": "python -m training sine --bundle DIR",
        },
        "evaluation": evaluation,
    }


def export_sine_bundle(checkpoint: Path, evaluation: dict, out_dir: Path, force: bool = False, log=print) -> dict:
    """Write the regression bundle of a sine run (its checkpoint and evaluation) into out_dir, whole
    (written beside it, then swapped in). -> the manifest."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    check_bundle_out(out_dir, force)
    payload = load_starts(checkpoint)
    hidden = SineConfig.from_dict(payload["config"]).hidden
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        write_weights(staging / WEIGHTS_FILE, payload["starts"])
        from torch.export import Dim

        for kind, filename in REGRESSION_GRAPH_FILES.items():
            started = time.perf_counter()
            signature = graph_signatures(hidden)[kind]
            dims = {"N": Dim("points", min=1)}
            export_function(
                graph_function(kind), example_inputs(kind, hidden), signature, dims, kind, staging / filename
            )
            log(f"{filename}: {(staging / filename).stat().st_size} bytes, {time.perf_counter() - started:.0f} s")
        written = [WEIGHTS_FILE, *REGRESSION_GRAPH_FILES.values()]
        files = {f: {"sha256": sha256_file(staging / f), "bytes": (staging / f).stat().st_size} for f in written}
        manifest = build_manifest(payload, checkpoint, out_dir.name, files, evaluation)
        write_card_and_manifest(staging, manifest)
        _make_readable(staging)
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if manifest["warning"]:
        log(f"WARNING: {manifest['warning']}")
    return manifest
