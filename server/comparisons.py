"""The comparison starts of the demo's "Compare with" (docs/web.md): bundles in the models folder named
after the served one, `<served folder>-joint` (joint training, the paper's baseline) and
`<served folder>-random` (a random initialization). The page adapts their weights with the served
bundle's graphs, so a start is offered only when its model.json reads as a bundle with the served
bundle's parameters and graph signatures; only its model.json and weights are ever fetched."""

import json
import logging
from pathlib import Path

from bundle.format import MANIFEST_FILE, check_format

log = logging.getLogger("reptile_demo")

STARTS = ("joint", "random")  # the page's "Compare with" values, in its order


def same_graphs(manifest: dict, served: dict) -> bool:
    """Whether `manifest`'s weights run on the served bundle's graphs: the same parameters (names and
    shapes) and every graph with the same inputs and outputs."""
    if manifest.get("architecture", {}).get("parameters") != served["architecture"]["parameters"]:
        return False
    graphs = manifest.get("graphs") or {}
    sides = ("inputs", "outputs")
    return all(
        graphs.get(name, {}).get(side) == graph[side] for name, graph in served["graphs"].items() for side in sides
    )


def comparison_manifests(models_dir: Path, served_folder: str, served: dict) -> dict:
    """{start: (folder, manifest)} of the comparison bundles found for the served bundle, in STARTS'
    order; one that is unreadable or does not fit the served graphs is left out, with a warning."""
    found = {}
    for start in STARTS:
        folder = Path(models_dir) / f"{served_folder}-{start}"
        if not (folder / MANIFEST_FILE).is_file():
            continue
        try:
            manifest = json.loads((folder / MANIFEST_FILE).read_text())
            problem = check_format(manifest, str(folder)) or (
                None if same_graphs(manifest, served) else "its parameters or graphs differ from the served bundle's"
            )
        except (OSError, ValueError, AttributeError) as error:
            problem = f"{type(error).__name__}: {error}"
        if problem:
            log.warning("comparison bundle %s left out: %s", folder, problem)
            continue
        found[start] = (folder, manifest)
    return found


def comparison_entry(manifest: dict, url) -> dict:
    """The page's view of one comparison start: its name, the URLs of its model.json and weights
    (url(file) -> the served URL) and its measured accuracy (null until measured)."""
    return {
        "name": manifest["name"],
        "manifest": url(MANIFEST_FILE),
        "weights": url(manifest["weights"]["file"]),
        "accuracy": manifest.get("accuracy"),
    }
