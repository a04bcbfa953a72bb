"""The public summary of a bundle: what GET /api/model answers and what the pages are rendered with.

The server passes the ranges and limits it enforces (its settings narrowed to the bundle); the
static export passes the bundle's own ranges and the server's default limits, so a page reads the
same shape from either.
"""

from .files import HASH_CHARS
from .open_set import SECTION as OPEN_SET_SECTION

ADAPTATION_KEYS = ("optimizer", "steps", "lr", "eps", "transductive", "chosen_by")
PROVENANCE_KEYS = ("iteration", "meta_iters", "exported_at")


def model_summary(
    manifest: dict, *, base_url: str, manifest_version: str | None, classes: dict, shots: dict, limits: dict
) -> dict:
    """-> the summary; base_url is where the bundle's files are served ('/models/<name>/'),
    manifest_version the ?v= of model.json (None: unversioned), classes and shots {"min", "max"}."""
    files = {
        name: {
            "url": f"{base_url}{name}?v={entry['sha256'][:HASH_CHARS]}",
            "sha256": entry["sha256"],
            "bytes": entry.get("bytes"),
        }
        for name, entry in sorted(manifest.get("files", {}).items())
    }
    adaptation = manifest["adaptation"]
    provenance = manifest.get("provenance") or {}
    return {
        "name": manifest["name"],
        "warning": manifest.get("warning"),
        "training_complete": manifest.get("training_complete"),
        "format_version": manifest.get("format_version"),
        "classes": dict(classes),
        "shots": dict(shots),
        "trained_ways": manifest["trained_ways"],
        "adaptation": {key: adaptation.get(key) for key in ADAPTATION_KEYS},
        "accuracy": manifest.get("accuracy"),
        # whether the model scores "none of these" (bundle/open_set.py)
        "open_set": manifest.get(OPEN_SET_SECTION) is not None,
        "input": {
            "shape": list(manifest["input"]["shape"][1:]),
            "preprocessing_spec": manifest["input"].get("preprocessing_spec"),
        },
        "limits": dict(limits),
        "manifest_url": f"{base_url}model.json" + (f"?v={manifest_version}" if manifest_version else ""),
        "base_url": base_url,
        "files": files,
        "provenance": {key: provenance.get(key) for key in PROVENANCE_KEYS},
    }
