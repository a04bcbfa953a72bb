"""The reader of a regression bundle (model.json `task` = "regression", docs/bundle.md): a small network
y = f(x) with several named starts (weight sets), adapted to a few points by plain SGD through its own
ONNX graphs. Load it with `load_bundle(path, task=REGRESSION)` (bundle/reader.py verifies every file).

numpy, safetensors, onnxruntime and the standard library only, as the rest of bundle/.
"""

from dataclasses import dataclass, field

import numpy as np

from .format import MANIFEST_FILE, REGRESSION_GRAPH_FILES, WEIGHT_SET_SEPARATOR
from .verified import BundleError, VerifiedBundle, check_tensor


@dataclass
class RegressionResult:
    """What RegressionBundle.adapt returns."""

    params: dict  # the adapted parameters, name -> float32 array
    losses: list = field(default_factory=list)  # losses[k]: the points' mean squared error after k steps
    predictions: np.ndarray | None = None  # float32 [steps + 1, Q, 1]: the fit at query_x after each step


class RegressionBundle(VerifiedBundle):
    """A verified regression bundle. Create with load_bundle(path, task=REGRESSION)."""

    def _check_weights(self) -> None:
        """Every weight set holds every parameter, float32, finite, with the manifest's shape."""
        weights = self.manifest["weights"]
        if not weights.get("sets") or weights.get("default_set") not in weights["sets"]:
            raise BundleError(f"bundle {self.path}: {MANIFEST_FILE} weights need `sets` and a `default_set` among them")
        for weight_set in self.weight_sets:
            for entry in self.manifest["architecture"]["parameters"]:
                key = weight_set + WEIGHT_SET_SEPARATOR + entry["name"]
                check_tensor(self.path, self.manifest, self._tensors, key, entry["shape"])

    # ------------------------------------------------------------------ properties
    @property
    def weight_sets(self) -> list:
        """The starts the bundle holds, in model.json's order (e.g. meta-learned, joint, random)."""
        return list(self.manifest["weights"]["sets"])

    @property
    def defaults(self) -> dict:
        """A copy of the manifest's default adaptation settings."""
        return dict(self.manifest["adaptation"])

    def params(self, weight_set: str | None = None) -> dict:
        """A copy of one start's parameters (default: model.json weights.default_set), name -> float32 array."""
        weight_set = self.manifest["weights"]["default_set"] if weight_set is None else weight_set
        if weight_set not in self.manifest["weights"]["sets"]:
            raise ValueError(f"weight_set: expected one of {self.weight_sets}, got {weight_set!r}")
        return {n: self._tensors[weight_set + WEIGHT_SET_SEPARATOR + n].copy() for n in self.param_names}

    # ------------------------------------------------------------------ graphs
    def open_graphs(self) -> None:
        """Create the session of every graph now, checking each; BundleError naming the first bad file."""
        for graph in REGRESSION_GRAPH_FILES:
            if graph not in self.manifest["graphs"]:
                raise BundleError(f"bundle {self.path}: {MANIFEST_FILE} declares no {graph} graph")
            self.session(graph)

    def _feed(self, params: dict) -> dict:
        return {n: np.ascontiguousarray(params[n], dtype=np.float32) for n in self.param_names}

    def predict(self, params: dict, x) -> np.ndarray:
        """x [N] or [N, 1] -> y float32 [N, 1]."""
        x = _points(x, "x")
        return self.session("predict").run(["y"], {**self._feed(params), "x": x})[0]

    def train_step_sgd(self, params: dict, x, y, lr: float) -> tuple:
        """One SGD step on the mean squared error of the points -> (updated params, the loss before the step)."""
        x, y = _points(x, "x"), _points(y, "y")
        if len(x) != len(y):
            raise ValueError(f"y: expected {len(x)} values, one per x, got {len(y)}")
        feed = {**self._feed(params), "x": x, "y": y, "lr": np.array(lr, dtype=np.float32)}
        outputs = self.session("train_step_sgd").run(None, feed)
        return dict(zip(self.param_names, outputs[:-1], strict=True)), float(outputs[-1])

    def adapt(
        self, x, y, weight_set: str | None = None, steps: int | None = None, lr: float | None = None, query_x=None
    ):
        """`steps` full-batch SGD steps on the points (x, y) from one start (model.json's defaults for what
        is unset) -> RegressionResult: the adapted parameters, the points' loss after each step (0..steps)
        and, with query_x, the fit there after each step."""
        defaults = self.defaults
        steps = defaults["steps"] if steps is None else int(steps)
        lr = defaults["lr"] if lr is None else float(lr)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        params = self.params(weight_set)
        curve = [] if query_x is None else [self.predict(params, query_x)]
        losses = []
        for _ in range(steps):
            params, loss = self.train_step_sgd(params, x, y, lr)
            losses.append(loss)
            if query_x is not None:
                curve.append(self.predict(params, query_x))
        fit = self.predict(params, x)  # the loss after the last step: the train step reports the one before it
        losses.append(float(np.mean((fit - _points(y, "y")) ** 2, dtype=np.float32)))
        return RegressionResult(params, losses, np.stack(curve) if curve else None)


def _points(values, what: str) -> np.ndarray:
    """values [N] or [N, 1] as contiguous float32 [N, 1], N >= 1 and finite; ValueError naming `what`."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[1] != 1 or len(values) < 1:
        raise ValueError(f"{what}: expected [N] or [N, 1] values, N >= 1, got {list(values.shape)}")
    if not np.isfinite(values).all():
        raise ValueError(f"{what}: values contain NaN or infinity")
    return np.ascontiguousarray(values)
