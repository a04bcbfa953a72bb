"""model.json for an exported checkpoint: the model, its graphs and how to adapt it, plus provenance.

Provenance records what the bundle came from: the checkpoint and its sha256, every training
session's command and device, the data's sha256, the git commit (and whether the code that defines
a bundle had local changes) and the versions of the exporting libraries.
"""

import platform
import subprocess
import time
from pathlib import Path

from bundle.files import sha256_file
from bundle.format import (
    ADAM_V_PREFIX,
    FORMAT,
    FORMAT_VERSION,
    GRAPH_FILES,
    HEAD_RULE,
    TEST_CLASSES_FILE,
    WEIGHTS_FILE,
)

from .model import BN_EPS, ModelSpec
from .omniglot import NUM_TRAIN_CHARACTERS
from .onnx_graphs import OPSET, graph_signatures, param_shapes
from .onnx_ops import ADAM_BETA2, ADAM_EPS
from .presets import Config

CLASSES_RANGE = (2, 10)
SHOTS_RANGE = (1, 5)
CODE_PATHS = ("training", "preprocessing", "bundle")  # the code that defines a bundle (for the dirty flag)


def _git(*args, cwd: Path) -> str | None:
    """git's output, or None when git is missing or fails (e.g. not a checkout)."""
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def code_version() -> dict:
    """The commit the bundle was exported from and whether the bundle-defining code had local changes."""
    root = Path(__file__).resolve().parent.parent
    commit = _git("rev-parse", "HEAD", cwd=root)
    status = _git("status", "--porcelain", "--", *CODE_PATHS, cwd=root)
    return {
        "git_commit": commit,
        "dirty": None if status is None else bool(status),
        "dirty_means": f"uncommitted changes under {', '.join(p + '/' for p in CODE_PATHS)} at export time",
    }


def versions() -> dict:
    """The versions of what made the graphs (python, torch, onnx, onnxscript, the opset)."""
    import onnx
    import onnxscript
    import torch

    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "opset": OPSET,
    }
    try:
        import onnxruntime

        found["onnxruntime_used_to_check"] = onnxruntime.__version__
    except ImportError:
        pass
    return found


def short_run_warning(iteration: int, meta_iters: int, unit: str = "meta-iterations") -> str | None:
    """The bundle's warning when training stopped before meta_iters, else None."""
    if iteration < meta_iters:
        return f"trained for only {iteration} of {meta_iters} {unit}: not the real model"
    return None


def planned_iterations(config: Config, run_config: dict | None) -> int:
    """How long the run was to train: meta_iters, or a joint-training run's steps (training/baseline.py
    records them in config.json; its checkpoints keep the preset's meta_iters, which it never runs)."""
    if config.algorithm == "joint" and run_config and "baseline" in run_config:
        return int(run_config["baseline"]["steps"])
    return config.meta_iters


def build_manifest(
    payload: dict,
    checkpoint_path: Path,
    name: str,
    files: dict,
    run_config: dict | None,
    adaptation: dict | None = None,
) -> dict:
    """model.json for a checkpoint payload whose files (name -> sha256, bytes) are written; the
    export adds test_classes, the evaluation adds accuracy."""
    config = Config.from_dict(payload["config"])
    spec = ModelSpec(**payload["spec"])
    iteration = int(payload["iteration"])
    planned = planned_iterations(config, run_config)
    warning = short_run_warning(iteration, planned, "steps" if config.algorithm == "joint" else "meta-iterations")
    signatures = graph_signatures(spec)
    data_hashes = {k: v for k, v in (run_config or {}).items() if k.endswith("_sha256")}
    # train.py records every start and resume of the run: the first is the training command;
    # baseline.py records its one command and device at the top level
    sessions = list((run_config or {}).get("sessions") or [])
    if not sessions and (run_config or {}).get("command"):
        keys = ("command", "device", "processes", "threads", "torch", "python", "machine")
        sessions = [{key: run_config.get(key) for key in keys} | {"from_iteration": 0}]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "warning": warning,
        "training_complete": warning is None,
        "architecture": {
            **spec.to_dict(),
            "feature_size": spec.feature_size(),
            "feature_blocks": spec.block_shapes(),  # the predict graph's `features`: these outputs, flat, in order
            "conv_bias": False,
            "batch_norm": {"statistics": "batch (training mode, always)", "eps": BN_EPS},
            "loss": "cross-entropy summed over the batch",
            "parameters": [
                {"name": n, "shape": list(s)} for n, s in zip(spec.param_names(), param_shapes(spec, "C"), strict=False)
            ],
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
            "optimizer": config.inner_optimizer,  # adapt as the run's inner loop trained: Adam or plain SGD
            "steps": (adaptation or {}).get("steps", config.eval_iters),
            "lr": (adaptation or {}).get("lr", config.lr),
            "eps": ADAM_EPS,
            "batch": "the full support set at every step",
            "adam_state": f"carried: start from weights {ADAM_V_PREFIX}* and t = adam_t"
            if payload["adam_t"]
            else f"fresh: weights {ADAM_V_PREFIX}* are 0 and adam_t is 0 (the training carried no inner-Adam state)",
            "transductive": config.transductive,
            "prediction": (
                "non-transductive: each query in one batch with the support set (its row is the last); "
                "transductive: all queries in one batch (needs >= 2 queries)"
            ),
            "chosen_by": (adaptation or {}).get("chosen_by", "training config (not yet measured)"),
        },
        "head_extension": {
            "rule": HEAD_RULE,
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
            "meta_iters": planned,
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
            "versions": versions(),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "test_classes": None,
        "accuracy": None,
    }
    return manifest


def _preprocessing_spec_version() -> int:
    """The version of the preprocessing spec the model's inputs follow (preprocessing/)."""
    from preprocessing import SPEC_VERSION

    return SPEC_VERSION


def test_classes_entry(count: int, config: dict) -> dict:
    """The manifest's `test_classes`: the bundle's list of `count` held-out classes and how they were split."""
    return {
        "file": TEST_CLASSES_FILE,
        "count": count,
        "split": (
            f"the characters not used in meta-training: all {count + NUM_TRAIN_CHARACTERS} Omniglot characters "
            f"shuffled with seed {config['seed']}, the first {NUM_TRAIN_CHARACTERS} for training"
            if config["dataset"] == "omniglot"
            else "the dataset's test split"
        ),
    }
