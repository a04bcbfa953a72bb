"""The bundle reader: load + verify (sha256 of every file), build a C-class head, run the graphs.

Depends on numpy, safetensors, onnxruntime and the standard library only; it must never import
torch (the server and its tests rely on that). The format's names and rules come from
bundle/format.py (documented in docs/bundle.md); training/export.py writes bundles.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import open_set
from .format import (
    ADAM_V_PREFIX,
    CLASSIFICATION,
    GRAPH_FILES,
    MANIFEST_FILE,
    REGRESSION,
    build_head,
    task_kind,
)
from .regression import RegressionBundle
from .verified import BundleError, VerifiedBundle, check_tensor, read_verified


@dataclass
class AdaptResult:
    """What Bundle.adapt returns: the queries' predictions and the adapted state."""

    predictions: np.ndarray  # int64 [q]
    probabilities: np.ndarray  # float32 [q, C]
    logits: np.ndarray  # float32 [q, C]
    losses: list = field(default_factory=list)  # summed cross-entropy of each adaptation step (before it)
    params: dict = field(default_factory=dict)  # the adapted parameters
    unknown_scores: np.ndarray | None = None  # float64 [q], higher = less like any class (bundle/open_set.py)
    unknown: np.ndarray | None = None  # bool [q]: score above the setting's threshold; None without an open-set score


class Bundle(VerifiedBundle):
    """A verified bundle. Create with Bundle.load / load_bundle."""

    def __init__(self, path: Path, manifest: dict, tensors: dict, threads: int | None = None):
        super().__init__(path, manifest, tensors, threads)
        try:  # the open-set score's bank of reference drawings, its sha256 verified with the other files
            self._references = open_set.read_references(self.path, manifest.get(open_set.SECTION))
        except ValueError as error:
            raise BundleError(f"bundle {self.path}: {error}") from None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path, threads: int | None = None) -> "Bundle":
        """Read model.json, check its format and every file's sha256, load the weights; BundleError if any
        fails or the bundle is not a classification bundle."""
        return load_bundle(path, threads, CLASSIFICATION)

    def _check_weights(self) -> None:
        """Every parameter and its Adam v is in the weights, float32, finite, with the manifest's shape."""
        ways = self.trained_ways
        for entry in self.manifest["architecture"]["parameters"]:
            shape = tuple(ways if d == "C" else d for d in entry["shape"])
            for key in (entry["name"], ADAM_V_PREFIX + entry["name"]):
                check_tensor(self.path, self.manifest, self._tensors, key, shape)

    # ------------------------------------------------------------------ properties
    @property
    def trained_ways(self) -> int:
        """The rows of the meta-trained head."""
        return int(self.manifest["trained_ways"])

    @property
    def adam_t(self) -> int:
        """The carried inner-Adam step count."""
        return int(self.manifest["weights"]["adam_t"])

    @property
    def classes_range(self) -> tuple:
        """(min, max) classes a task may have."""
        return self.manifest["classes"]["min"], self.manifest["classes"]["max"]

    @property
    def shots_range(self) -> tuple:
        """(min, max) examples per class."""
        return self.manifest["shots"]["min"], self.manifest["shots"]["max"]

    @property
    def image_shape(self) -> tuple:
        """One image's shape, (channels, height, width)."""
        return tuple(self.manifest["input"]["shape"][1:])

    @property
    def open_set(self) -> dict | None:
        """model.json's open-set score ("none of these"), or None when the bundle has none."""
        return self.manifest.get(open_set.SECTION)

    @property
    def open_set_references(self) -> np.ndarray | None:
        """The open-set score's bank of reference drawings, float32 [R, C, H, W], or None without one."""
        return self._references

    @property
    def feature_blocks(self) -> list:
        """Each conv block's output shape [channels, height, width], in the predict graph's `features`."""
        return self.manifest["architecture"]["feature_blocks"]

    @property
    def defaults(self) -> dict:
        """A copy of the manifest's default adaptation settings."""
        return dict(self.manifest["adaptation"])

    # ------------------------------------------------------------------ state
    def initial_state(self, classes: int):
        """-> (params, adam_v): name -> float32 array, the head built for `classes` classes."""
        params = {n: self._tensors[n].copy() for n in self.param_names}
        v = {n: self._tensors[ADAM_V_PREFIX + n].copy() for n in self.param_names}
        head_w, head_b = self.param_names[-2:]
        for state in (params, v):
            state[head_w], state[head_b] = build_head(state[head_w], state[head_b], classes, self.trained_ways)
        return params, v

    # ------------------------------------------------------------------ graphs
    def open_graphs(self) -> None:
        """Create the session of every graph now, checking each; BundleError naming the first bad file."""
        for graph in GRAPH_FILES:
            if graph not in self.manifest["graphs"]:
                raise BundleError(f"bundle {self.path}: {MANIFEST_FILE} declares no {graph} graph")
            self.session(graph)

    def _params_feed(self, params: dict) -> dict:
        """The parameters as contiguous float32 graph inputs."""
        return {n: np.ascontiguousarray(params[n], dtype=np.float32) for n in self.param_names}

    def predict(self, params: dict, images: np.ndarray, features: bool = False):
        """images [B >= 2, ...] -> (logits [B, C], probabilities [B, C]), and with features=True
        every block's output [B, D] third (bundles with an open-set score)."""
        images = self._images(images, "images")
        if len(images) < 2:
            raise ValueError("predict needs a batch of at least 2 images (BatchNorm uses batch statistics)")
        wanted = ["logits", "probabilities"] + ([open_set.FEATURES_OUTPUT] if features else [])
        return tuple(self.session("predict").run(wanted, {**self._params_feed(params), "images": images}))

    def predict_each(self, params: dict, support: np.ndarray, labels: np.ndarray, queries: np.ndarray, classes: int):
        """Each query predicted in one batch with the support set (non-transductive) -> (logits [q, C],
        probabilities [q, C], unknown_scores float64 [q], unknown bool [q]); the last two are None
        when the bundle has no open-set score."""
        section = self.open_set
        reference = None
        if self.open_set_references is not None:  # the bank: one batch with the support set
            features = self.predict(params, np.concatenate([support, self.open_set_references]), features=True)[2]
            reference = open_set.reference_statistics(features, labels, classes, self.feature_blocks)
        rows, inputs = [], []
        for query in queries:
            out = self.predict(params, np.concatenate([support, query[None]]), features=bool(section))
            rows.append((out[0][-1], out[1][-1]))
            if section:
                found = open_set.score_inputs(
                    out[2][None], out[1][-1:], labels, classes, self.feature_blocks, reference
                )
                inputs.append(found[0])
        logits, probabilities = (np.stack(column) for column in zip(*rows, strict=True))
        if not section:
            return logits, probabilities, None, None
        scores = open_set.unknown_scores(np.stack(inputs), section)
        limit = open_set.threshold(section, open_set.task_setting(labels, classes))
        return logits, probabilities, scores, scores > limit

    def train_step_sgd(self, params: dict, images, labels, lr: float):
        """One SGD step -> (updated params, the batch's summed loss before the step)."""
        outputs = self.session("train_step_sgd").run(
            None,
            {**self._params_feed(params), "images": images, "labels": labels, "lr": np.array(lr, dtype=np.float32)},
        )
        return dict(zip(self.param_names, outputs[:-1], strict=False)), float(outputs[-1])

    def train_step_adam(self, params: dict, v: dict, images, labels, lr: float, t: int, eps: float | None = None):
        """One TF-style Adam step (beta1 = 0) with step number t (1-based)."""
        n = len(self.param_names)
        eps = self.manifest["optimizers"]["adam"]["eps"] if eps is None else eps
        feed = {
            **self._params_feed(params),
            **{ADAM_V_PREFIX + k: np.ascontiguousarray(v[k], dtype=np.float32) for k in self.param_names},
            "images": images,
            "labels": labels,
            "lr": np.array(lr, dtype=np.float32),
            "t": np.array(t, dtype=np.float32),
            "eps": np.array(eps, dtype=np.float32),
        }
        outputs = self.session("train_step_adam").run(None, feed)
        return (
            dict(zip(self.param_names, outputs[:n], strict=False)),
            dict(zip(self.param_names, outputs[n : 2 * n], strict=False)),
            float(outputs[-1]),
        )

    # ------------------------------------------------------------------ adaptation
    def _images(self, images, what: str) -> np.ndarray:
        """images as contiguous float32 [n, *image_shape] (a missing channel axis added); ValueError naming `what`."""
        images = np.asarray(images, dtype=np.float32)
        shape = self.image_shape
        if images.ndim == len(shape) and shape[0] == 1:
            images = images[:, None]
        if images.ndim != len(shape) + 1 or tuple(images.shape[1:]) != shape:
            raise ValueError(f"{what}: expected [n, {', '.join(map(str, shape))}] images, got {list(images.shape)}")
        if not np.isfinite(images).all():
            raise ValueError(f"{what}: images contain NaN or infinity")
        return np.ascontiguousarray(images)

    def adapt(
        self,
        support_images,
        labels,
        query_images,
        steps: int | None = None,
        lr: float | None = None,
        optimizer: str | None = None,
        transductive: bool | None = None,
        classes: int | None = None,
        batches=None,
        eps: float | None = None,
    ) -> AdaptResult:
        """Fine-tune on the support set and classify the queries, as training/evaluate.py does.

        Each step uses the whole support set as its batch (or batches[k], indices into the support set,
        to reproduce mini-batches), Adam continues from the carried state with t = adam_t + k + 1.
        Prediction: non-transductive = each query in one batch with the support set; transductive =
        all queries in one batch. Unset arguments take the manifest's adaptation defaults; classes
        defaults to max(labels) + 1."""
        defaults = self.defaults
        steps = defaults["steps"] if steps is None else int(steps)
        lr = defaults["lr"] if lr is None else float(lr)
        optimizer = defaults["optimizer"] if optimizer is None else optimizer
        transductive = defaults["transductive"] if transductive is None else bool(transductive)
        if optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        support = self._images(support_images, "support_images")
        queries = self._images(query_images, "query_images")
        if len(support) < 2:
            raise ValueError("support_images: need at least 2 images (BatchNorm uses batch statistics)")
        labels = np.asarray(labels)
        if labels.shape != (len(support),) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels: expected {len(support)} integer labels, got {labels.dtype}{list(labels.shape)}")
        labels = labels.astype(np.int64)
        classes = int(labels.max()) + 1 if classes is None and len(labels) else classes
        low, high = self.classes_range
        if classes is None or not low <= classes <= high:
            raise ValueError(f"this bundle supports {low} to {high} classes, got {classes}")
        if labels.min() < 0 or labels.max() >= classes:
            raise ValueError(f"labels must be in 0..{classes - 1}")
        counts = np.bincount(labels, minlength=classes)
        low_shots, high_shots = self.shots_range
        if counts.min() < low_shots or counts.max() > high_shots:
            raise ValueError(
                f"this bundle supports {low_shots} to {high_shots} examples per class, "
                f"got {counts.tolist()} (class 0..{classes - 1})"
            )
        if len(queries) < 1:
            raise ValueError("query_images: need at least one query")
        if transductive and len(queries) < 2:
            raise ValueError(
                "transductive prediction needs at least 2 queries in the batch "
                "(BatchNorm uses batch statistics); use non-transductive prediction"
            )
        if batches is None:
            batches = [np.arange(len(support))] * steps
        elif len(batches) != steps:
            raise ValueError(f"batches: expected {steps} index arrays, got {len(batches)}")

        params, v = self.initial_state(classes)
        t = self.adam_t
        losses = []
        for k, batch in enumerate(batches):
            batch = np.asarray(batch, dtype=np.int64)
            if batch.ndim != 1 or len(batch) < 2:
                raise ValueError("every adaptation batch needs at least 2 images (BatchNorm uses batch statistics)")
            images, batch_labels = support[batch], labels[batch]
            if optimizer == "adam":
                params, v, loss = self.train_step_adam(params, v, images, batch_labels, lr, t + k + 1, eps)
            else:
                params, loss = self.train_step_sgd(params, images, batch_labels, lr)
            losses.append(loss)

        if not transductive:
            logits, probabilities, scores, flags = self.predict_each(params, support, labels, queries, classes)
        else:
            logits, probabilities = self.predict(params, queries)
            scores = flags = None
            if self.open_set:  # the score reads the non-transductive batches: its thresholds were fitted on them
                _, _, scores, flags = self.predict_each(params, support, labels, queries, classes)
        return AdaptResult(
            predictions=logits.argmax(-1).astype(np.int64),
            probabilities=probabilities,
            logits=logits,
            losses=losses,
            params=params,
            unknown_scores=scores,
            unknown=flags,
        )


def load_bundle(path, threads: int | None = None, task: str | None = CLASSIFICATION):
    """Load and verify a bundle directory; raises BundleError on any problem. task: the kind of bundle the
    caller runs (CLASSIFICATION -> Bundle, REGRESSION -> bundle.regression.RegressionBundle; a bundle of
    another kind is refused), None for whichever kind the bundle is."""
    path = Path(path)
    manifest, tensors = read_verified(path)
    kind = task_kind(manifest)
    if task is not None and kind != task:
        raise BundleError(f"bundle {path} is a {kind} bundle; this reader needs a {task} bundle")
    if kind == REGRESSION:
        bundle = RegressionBundle(path, manifest, tensors, threads)
    else:
        bundle = Bundle(path, manifest, tensors, threads)
    bundle._check_weights()
    return bundle
