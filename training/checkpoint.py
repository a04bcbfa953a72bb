"""Atomic checkpoints: everything needed to continue a run bit for bit."""

import io
from pathlib import Path

import numpy as np
import torch

from bundle.files import write_atomic

from .reptile import MetaState

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(
    path: Path,
    *,
    config: dict,
    spec: dict,
    state: MetaState,
    iteration: int,
    rng: np.random.Generator,
    elapsed_s: float,
    extra: dict | None = None,
) -> None:
    """Write the checkpoint atomically (bundle/files.py's write_atomic): a kill at any moment
    leaves either the previous checkpoint or the new one, never a torn file."""
    payload = {
        "format": 1,
        "config": config,
        "spec": spec,
        "iteration": iteration,
        "params": [p.detach().cpu() for p in state.params],
        "adam_v": [v.detach().cpu() for v in state.adam_v],
        "adam_t": state.adam_t,
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "elapsed_s": elapsed_s,
        **(extra or {}),
    }
    buffer = io.BytesIO()  # ~0.9 MB for the Omniglot presets (checkpoints/): cheap to build in memory
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path, device: str = "cpu") -> dict:
    """The checkpoint's payload; a ValueError naming the file if it is not one of ours."""
    try:
        payload = torch.load(Path(path), map_location=device, weights_only=False)
    except OSError as error:
        raise ValueError(f"cannot read checkpoint {path}: {error}") from None
    except Exception as error:  # unpickling arbitrary bytes fails in many ways, each meaning "not ours"
        raise ValueError(
            f"cannot read checkpoint {path}: not a checkpoint of this project, or a damaged one "
            f"({type(error).__name__}: {error})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != 1:
        raise ValueError(f"{path} is not a checkpoint of this project (format 1)")
    return payload


def state_from_checkpoint(payload: dict) -> MetaState:
    """The meta-parameters and carried inner-Adam state of a payload."""
    return MetaState(list(payload["params"]), list(payload["adam_v"]), int(payload["adam_t"]))


def load_trained(path: Path):
    """A checkpoint as what evaluation needs: (payload, Config, ModelSpec, MetaState)."""
    from .model import ModelSpec
    from .presets import Config

    payload = load_checkpoint(path)
    return payload, Config.from_dict(payload["config"]), ModelSpec(**payload["spec"]), state_from_checkpoint(payload)


def restore_rng(payload: dict) -> np.random.Generator:
    """The run's numpy generator, and torch's global generator set, as they were at the checkpoint."""
    rng = np.random.default_rng()
    rng.bit_generator.state = payload["rng"]
    torch.set_rng_state(payload["torch_rng"])
    return rng
