"""The open-set score: how unlike every one of the task's classes a query is, and the "none of these"
decision (docs/bundle.md, "open_set"; chosen by measurement in docs/results.md, "Open-set").

Each query is predicted in one batch with the support set (its row is the last). From that batch's
predict outputs the score takes 1 + 2L inputs, L being the conv blocks (2L "views": each block's
output, flattened, then each block's channel means):

- `msp`: 1 - the query's largest probability;
- `blockB_cosine`: 1 - the largest cosine similarity between the query's block-B output (flattened)
  and a class mean, the mean of that class's support rows in the same batch;
- `blockB_pooled_cosine`: the same on block B's channel means.

A section with `references` (a bank of drawings of training characters, shipped in the bundle) adds
2L more: the bank is predicted once, in one batch with the support set, and each reference's cosine
with each class mean gives that class, in each view, a mean and spread of how similar *other*
characters look to it. `blockB_cosine_z` and `blockB_pooled_cosine_z` are minus the query's largest
z-score (cosine - class mean) / class spread: a class that every drawing resembles (a dot, a line)
no longer absorbs what matches nothing.

The inputs are standardised with `mean` and `scale`, weighted, summed with `bias` and passed through
the logistic function: `unknown_score`, in (0, 1), higher = less like any class. The query is
*unknown* when its score is above the threshold of the task's setting, "<classes>x<shots>", shots
being the fewest examples any class has. Everything is computed in float64; web/js/open_set.js is
the same arithmetic for the browser (tests/test_web_engine_js.py checks the two agree).

numpy and the standard library only.
"""

from pathlib import Path

import numpy as np

SECTION = "open_set"  # model.json's key
FEATURES_OUTPUT = "features"  # the predict graph's output it reads: every block's output, flat, concatenated
REFERENCES_FILE = "open_set_references.u8"  # the bank, in REFERENCES_ENCODING
REFERENCES_ENCODING = "uint8, row-major; the model input is value / 255 (ink = 1)"
SPREAD_FLOOR = 1e-6  # added to each class's spread of reference cosines, so a z-score never divides by 0


def input_names(layers: int, references: bool = False) -> list:
    """The score's inputs, in order, for a network of `layers` conv blocks (with the bank's z-scores)."""
    blocks = range(1, layers + 1)
    views = [f"block{b}_cosine" for b in blocks] + [f"block{b}_pooled_cosine" for b in blocks]
    return ["msp", *views, *([f"{name}_z" for name in views] if references else [])]


def setting_key(classes: int, shots: int) -> str:
    """The thresholds' key of a task with `classes` classes whose smallest class has `shots` examples."""
    return f"{classes}x{shots}"


def task_setting(labels, classes: int) -> str:
    """The setting of a support set's labels: its classes and the fewest examples of any class."""
    return setting_key(classes, int(np.bincount(np.asarray(labels), minlength=classes).min()))


def _views(features: np.ndarray, blocks) -> list:
    """features [..., D] -> the 2L views [..., d]: each block's output flattened, then its channel means."""
    flat, pooled, start = [], [], 0
    for channels, height, width in blocks:
        size = channels * height * width
        part = features[..., start : start + size]
        flat.append(part)
        pooled.append(part.reshape(*part.shape[:-1], channels, height * width).mean(-1))
        start += size
    if start != features.shape[-1]:
        raise ValueError(f"features: {features.shape[-1]} values per image, the blocks account for {start}")
    return flat + pooled


def _class_cosines(support: np.ndarray, rows: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """support [..., S, d], rows [..., d] -> [..., C]: each row's cosine similarity with each class mean."""
    onehot = np.zeros((len(labels), classes))
    onehot[np.arange(len(labels)), labels] = 1.0
    means = np.einsum("sc,...sd->...cd", onehot / onehot.sum(0), support)
    norms = np.linalg.norm(means, axis=-1) * np.linalg.norm(rows, axis=-1)[..., None]
    return np.einsum("...cd,...d->...c", means, rows) / np.maximum(norms, 1e-12)


def reference_statistics(features, labels, classes: int, blocks) -> tuple:
    """The bank's per-class statistics from ONE predict batch of the support set, then the R references:
    features [S + R, D] -> (mean, spread), float64 [2L, C] each: over the references, the mean and
    the standard deviation (+ SPREAD_FLOOR) of their cosine with each class mean, in each view."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    s = len(labels)
    cosines = np.stack([_class_cosines(v[:s], v[s:], labels, classes) for v in _views(features, blocks)])  # [2L, R, C]
    return cosines.mean(1), cosines.std(1) + SPREAD_FLOOR


def score_inputs(features, probabilities, labels, classes: int, blocks, reference: tuple | None = None) -> np.ndarray:
    """The score's inputs (float64 [q, 1 + 2L], or [q, 1 + 4L] with `reference`) for q queries.

    features [q, S + 1, D]: query j's predict batch (the S support rows, then the query);
    probabilities [q, C]: each query's probabilities from that batch; labels [S]: the support
    labels; blocks: the [channels, height, width] of each block, in the order of `features`;
    reference: reference_statistics of the bank, for the z-score inputs."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    cosines = [_class_cosines(v[:, :-1], v[:, -1], labels, classes) for v in _views(features, blocks)]  # [q, C] each
    columns = [1.0 - np.asarray(probabilities, dtype=np.float64).max(-1)]
    columns += [1.0 - c.max(-1) for c in cosines]
    if reference is not None:
        mean, spread = reference
        columns += [-((c - mean[i]) / spread[i]).max(-1) for i, c in enumerate(cosines)]
    return np.stack(columns, axis=-1)


def unknown_scores(inputs: np.ndarray, section: dict) -> np.ndarray:
    """The open-set section's logistic combination of score_inputs -> [q] in (0, 1)."""
    z = (np.asarray(inputs, dtype=np.float64) - np.asarray(section["mean"])) / np.asarray(section["scale"])
    logit = z @ np.asarray(section["weights"], dtype=np.float64) + float(section["bias"])
    return 1.0 / (1.0 + np.exp(-logit))


def threshold(section: dict, setting: str) -> float:
    """The score above which a query of a task in `setting` is unknown."""
    return float(section["thresholds"][setting])


def check_section(section, layers: int, classes_range: tuple, shots_range: tuple) -> str | None:
    """None when `section` is a usable open-set section for this architecture and these settings, else why."""
    if not isinstance(section, dict):
        return f"{SECTION} is not an object"
    if "references" in section and not _reference_shape(section["references"]):
        return f"{SECTION}.references must be {{file: a file name, shape: [count >= 2, channels, height, width]}}"
    names = input_names(layers, "references" in section)
    if section.get("inputs") != names:
        return f"{SECTION}.inputs is {section.get('inputs')!r}, this reader computes {names}"
    for key in ("mean", "scale", "weights"):
        values = section.get(key)
        if not isinstance(values, list) or len(values) != len(names) or not all(_finite(v) for v in values):
            return f"{SECTION}.{key} must be {len(names)} finite numbers"
    if not all(v > 0 for v in section["scale"]):
        return f"{SECTION}.scale must be positive"
    if not _finite(section.get("bias")):
        return f"{SECTION}.bias must be a finite number"
    thresholds = section.get("thresholds")
    if not isinstance(thresholds, dict):
        return f"{SECTION}.thresholds is not an object"
    for classes in range(classes_range[0], classes_range[1] + 1):
        for shots in range(shots_range[0], shots_range[1] + 1):
            value = thresholds.get(setting_key(classes, shots))
            if not _finite(value) or not 0 <= value <= 1:
                return f"{SECTION}.thresholds[{setting_key(classes, shots)!r}] must be a number in [0, 1]"
    return None


def manifest_problem(manifest: dict, where: str) -> str | None:
    """None when the manifest has no open-set section or a usable one (and the features it reads), else why."""
    section = manifest.get(SECTION)
    if section is None:
        return None
    try:
        layers = len(manifest["architecture"]["feature_blocks"])
        outputs = [o.get("name") for o in manifest["graphs"]["predict"]["outputs"]]
        ranges = [(manifest[k]["min"], manifest[k]["max"]) for k in ("classes", "shots")]
    except (KeyError, TypeError):
        return f"{where}: {SECTION} needs architecture.feature_blocks, classes, shots and the predict outputs"
    if FEATURES_OUTPUT not in outputs:
        return f"{where}: {SECTION} needs the predict graph's {FEATURES_OUTPUT!r} output"
    problem = check_section(section, layers, *ranges)
    if not problem and "references" in section:
        references = section["references"]
        if references["file"] not in (manifest.get("files") or {}):
            problem = f"{SECTION}.references.file {references['file']!r} has no sha256 in files"
        elif references["shape"][1:] != list(manifest.get("input", {}).get("shape", [])[1:]):
            problem = f"{SECTION}.references.shape {references['shape']} is not [count, *the input's image shape]"
    return f"{where}: {problem}" if problem else None


def read_references(bundle_dir, section: dict) -> np.ndarray | None:
    """The section's bank of reference drawings as model inputs, float32 [R, C, H, W] (None without one);
    ValueError when the file's size is not its shape's. The caller has verified the file's sha256."""
    references = section.get("references") if section else None
    if references is None:
        return None
    raw = np.frombuffer((Path(bundle_dir) / references["file"]).read_bytes(), dtype=np.uint8)
    needed = int(np.prod(references["shape"]))
    if raw.size != needed:
        raise ValueError(f"{references['file']}: {raw.size} bytes, its shape {references['shape']} needs {needed}")
    return references_as_inputs(raw.reshape(references["shape"]))


def references_as_inputs(raw: np.ndarray) -> np.ndarray:
    """uint8 ink -> the model input, float32 value / 255 (as training/tasks.py to_tensor divides)."""
    return raw.astype(np.float32) / np.float32(255.0)


def _reference_shape(references) -> bool:
    """references is {file: a name (manifest_problem checks it is one of the bundle's files),
    shape: [count >= 2, channels, height, width] of positive integers}."""
    if not isinstance(references, dict) or not isinstance(references.get("file"), str):
        return False
    shape = references.get("shape")
    if not isinstance(shape, list) or len(shape) != 4:
        return False
    return all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape) and shape[0] >= 2


def _finite(value) -> bool:
    """A JSON number (not a bool) that is finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))
