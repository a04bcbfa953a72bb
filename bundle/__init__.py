"""The bundle format (docs/bundle.md) and its reader, with numpy + onnxruntime only: no torch.

from bundle import load_bundle
model = load_bundle("static/models/omniglot-20w")   # verifies every file's sha256
result = model.adapt(support_images, labels, query_images)
result.predictions, result.probabilities

sine = load_bundle("static/models/sine", task=REGRESSION)  # a regression bundle: bundle/regression.py
fit = sine.adapt(x, y, weight_set="meta-learned", query_x=grid)
"""

from .card import render_model_card, write_card_and_manifest
from .files import sha256_file, write_atomic
from .format import (
    ADAM_V_PREFIX,
    CARD_FILE,
    CLASSIFICATION,
    FORMAT,
    FORMAT_VERSION,
    GRAPH_FILES,
    HEAD_RULE,
    MANIFEST_FILE,
    REGRESSION,
    TEST_CLASSES_FILE,
    UPDATED_PREFIX,
    WEIGHTS_FILE,
    build_head,
    check_format,
    task_kind,
)
from .reader import AdaptResult, Bundle, BundleError, load_bundle
from .regression import RegressionBundle, RegressionResult

__all__ = [
    "ADAM_V_PREFIX",
    "CARD_FILE",
    "CLASSIFICATION",
    "FORMAT",
    "FORMAT_VERSION",
    "GRAPH_FILES",
    "HEAD_RULE",
    "MANIFEST_FILE",
    "REGRESSION",
    "TEST_CLASSES_FILE",
    "UPDATED_PREFIX",
    "WEIGHTS_FILE",
    "AdaptResult",
    "Bundle",
    "BundleError",
    "RegressionBundle",
    "RegressionResult",
    "build_head",
    "check_format",
    "load_bundle",
    "render_model_card",
    "task_kind",
    "sha256_file",
    "write_atomic",
    "write_card_and_manifest",
]
