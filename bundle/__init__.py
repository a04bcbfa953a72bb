"""Read and run a model bundle (docs/bundle.md) with numpy + onnxruntime only: no torch.

from bundle import load_bundle
model = load_bundle("static/models/omniglot-5w5s")   # verifies every file's sha256
result = model.adapt(support_images, labels, query_images)
result.predictions, result.probabilities
"""

from .reader import FORMAT, FORMAT_VERSION, AdaptResult, Bundle, BundleError, build_head, load_bundle, sha256_file

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "AdaptResult",
    "Bundle",
    "BundleError",
    "build_head",
    "load_bundle",
    "sha256_file",
]
