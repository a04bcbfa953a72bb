"""The bundle format's one definition in Python (docs/bundle.md): names, files, the head rule, task kinds.

training/ writes bundles with these names, bundle/reader.py and the server read them with them, and
web/js/engine.js spells the same values for the browser (tests/test_bundle_format.py checks the two
agree). numpy and the standard library only.
"""

import numpy as np

FORMAT = "reptile-bundle"
FORMAT_VERSION = 1

MANIFEST_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "MODEL_CARD.md"
TEST_CLASSES_FILE = "test_classes.txt"  # the run's held-out characters, so anyone can re-evaluate the bundle
GRAPH_FILES = {
    "predict": "predict.onnx",
    "train_step_sgd": "train_step_sgd.onnx",
    "train_step_adam": "train_step_adam.onnx",
}
ADAM_V_PREFIX = "adam_v."  # weights tensor of each parameter's carried inner-Adam second moment
UPDATED_PREFIX = "updated."  # train-step graph outputs: the parameter (or Adam v) after the step

HEAD_RULE = "trained-rows-cycled"

# model.json `task`: what the bundle's model does; a manifest without the key is a classification bundle.
CLASSIFICATION = "classification"  # the CNN above: images -> class probabilities, GRAPH_FILES
REGRESSION = "regression"  # a small network y = f(x) with several starts (weight sets), REGRESSION_GRAPH_FILES
TASK_KINDS = (CLASSIFICATION, REGRESSION)
REGRESSION_GRAPH_FILES = {"predict": "predict.onnx", "train_step_sgd": "train_step_sgd.onnx"}
WEIGHT_SET_SEPARATOR = "/"  # a regression bundle's weights name each tensor "<weight set>/<parameter>"


def task_kind(manifest: dict) -> str:
    """The manifest's task kind (CLASSIFICATION when it names none)."""
    return manifest.get("task", CLASSIFICATION)


def check_format(manifest, where: str) -> str | None:
    """None when `manifest` is a manifest this code reads, else a one-line reason naming `where`."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return f"{where}: not a {FORMAT} manifest"
    if manifest.get("format_version") != FORMAT_VERSION:
        return f"{where}: format version {manifest.get('format_version')!r}, this reader understands {FORMAT_VERSION}"
    kind = task_kind(manifest)
    if kind not in TASK_KINDS:
        return f"{where}: unknown task {kind!r}, this reader understands {' and '.join(map(repr, TASK_KINDS))}"
    if kind == REGRESSION:
        return None  # no head: one output, the same for every task
    rule = (manifest.get("head_extension") or {}).get("rule", HEAD_RULE)
    if rule != HEAD_RULE:
        return f"{where}: unknown head rule {rule!r}, this reader understands {HEAD_RULE!r}"
    return None


def build_head(weight: np.ndarray, bias: np.ndarray, classes: int, trained_ways: int | None = None):
    """The head for `classes` classes from the trained one (rule "trained-rows-cycled"): row i (and
    bias i) is trained row i mod trained_ways, so C <= trained_ways takes the first C rows and
    C == trained_ways the trained head as is. Apply it to the parameters (fc.weight, fc.bias) and
    to their Adam v alike. -> (weight [C, F], bias [C])."""
    weight, bias = np.asarray(weight, dtype=np.float32), np.asarray(bias, dtype=np.float32)
    rows = trained_ways if trained_ways is not None else weight.shape[0]
    if weight.ndim != 2 or bias.shape != (weight.shape[0],) or weight.shape[0] != rows:
        raise ValueError(f"expected a trained head [{rows}, F] and bias [{rows}], got {weight.shape} and {bias.shape}")
    if classes < 1:
        raise ValueError(f"classes must be >= 1, got {classes}")
    order = np.arange(classes) % rows
    return weight[order].copy(), bias[order].copy()
