"""The open-set score: how unlike every one of the task's classes a query is, and the "none of these"
decision (docs/bundle.md, "open_set"; chosen by measurement in docs/results.md, "Open-set").

Each query is predicted in one batch with the support set (its row is the last). From that batch's
predict outputs the score takes 1 + 2L inputs, L being the conv blocks:

- `msp`: 1 - the query's largest probability;
- `blockB_cosine`: 1 - the largest cosine similarity between the query's block-B output (flattened)
  and a class mean, the mean of that class's support rows in the same batch;
- `blockB_pooled_cosine`: the same on block B's channel means.

They are standardised with `mean` and `scale`, weighted, summed with `bias` and passed through the
logistic function: `unknown_score`, in (0, 1), higher = less like any class. The query is *unknown*
when its score is above the threshold of the task's setting, "<classes>x<shots>", shots being the
fewest examples any class has. Everything is computed in float64; web/js/open_set.js is the same
arithmetic for the browser (tests/test_web_engine_js.py checks the two agree).

numpy and the standard library only.
"""

import numpy as np

SECTION = "open_set"  # model.json's key
FEATURES_OUTPUT = "features"  # the predict graph's output it reads: every block's output, flat, concatenated


def input_names(layers: int) -> list:
    """The score's inputs, in order, for a network of `layers` conv blocks."""
    flat = [f"block{b}_cosine" for b in range(1, layers + 1)]
    pooled = [f"block{b}_pooled_cosine" for b in range(1, layers + 1)]
    return ["msp", *flat, *pooled]


def setting_key(classes: int, shots: int) -> str:
    """The thresholds' key of a task with `classes` classes whose smallest class has `shots` examples."""
    return f"{classes}x{shots}"


def task_setting(labels, classes: int) -> str:
    """The setting of a support set's labels: its classes and the fewest examples of any class."""
    return setting_key(classes, int(np.bincount(np.asarray(labels), minlength=classes).min()))


def _nearest_cosine(support: np.ndarray, query: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """support [q, S, d], query [q, d] -> [q]: 1 - the largest cosine similarity with a class mean."""
    onehot = np.zeros((len(labels), classes))
    onehot[np.arange(len(labels)), labels] = 1.0
    means = np.einsum("sc,qsd->qcd", onehot / onehot.sum(0), support)
    norms = np.linalg.norm(means, axis=-1) * np.linalg.norm(query, axis=-1)[:, None]
    cosine = np.einsum("qcd,qd->qc", means, query) / np.maximum(norms, 1e-12)
    return 1.0 - cosine.max(-1)


def score_inputs(features, probabilities, labels, classes: int, blocks) -> np.ndarray:
    """The score's inputs (float64 [q, 1 + 2L]) for q queries.

    features [q, S + 1, D]: query j's predict batch (the S support rows, then the query);
    probabilities [q, C]: each query's probabilities from that batch; labels [S]: the support
    labels; blocks: the [channels, height, width] of each block, in the order of `features`."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    support, query = features[:, :-1], features[:, -1]
    columns = [1.0 - np.asarray(probabilities, dtype=np.float64).max(-1)]
    flat, pooled, start = [], [], 0
    for channels, height, width in blocks:
        size = channels * height * width
        s, q = support[..., start : start + size], query[..., start : start + size]
        flat.append(_nearest_cosine(s, q, labels, classes))
        s_mean = s.reshape(*s.shape[:-1], channels, height * width).mean(-1)
        q_mean = q.reshape(len(q), channels, height * width).mean(-1)
        pooled.append(_nearest_cosine(s_mean, q_mean, labels, classes))
        start += size
    if start != features.shape[-1]:
        raise ValueError(f"features: {features.shape[-1]} values per image, the blocks account for {start}")
    return np.stack(columns + flat + pooled, axis=-1)


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
    names = input_names(layers)
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
    return f"{where}: {problem}" if problem else None


def _finite(value) -> bool:
    """A JSON number (not a bool) that is finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))
