"""A graph's inputs and outputs against model.json and against what bundle/reader.py feeds and reads.

numpy-free and torch-free: names, dtypes and shapes only.
"""

from pathlib import Path

from .format import ADAM_V_PREFIX, MANIFEST_FILE, REGRESSION, UPDATED_PREFIX, task_kind
from .open_set import FEATURES_OUTPUT

ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64"}  # onnxruntime's type names -> model.json's


def io_names(manifest: dict, graph: str) -> tuple:
    """(inputs, outputs): the names the reader feeds to and reads from `graph`, in model.json's order.
    The predict graph's `features` output is optional (bundles without an open-set score may lack it)."""
    params = [p["name"] for p in manifest["architecture"]["parameters"]]
    v = [ADAM_V_PREFIX + n for n in params]
    updated = [UPDATED_PREFIX + n for n in params]
    if task_kind(manifest) == REGRESSION:
        return (params + ["x"], ["y"]) if graph == "predict" else (params + ["x", "y", "lr"], updated + ["loss"])
    if graph == "predict":
        declared = [o.get("name") for o in manifest["graphs"]["predict"].get("outputs") or []]
        features = [FEATURES_OUTPUT] if FEATURES_OUTPUT in declared else []
        return params + ["images"], ["logits", "probabilities", *features]
    if graph == "train_step_sgd":
        return params + ["images", "labels", "lr"], updated + ["loss"]
    return params + v + ["images", "labels", "lr", "t", "eps"], updated + [UPDATED_PREFIX + n for n in v] + ["loss"]


def signature_problem(bundle_path: Path, manifest: dict, graph: str, session) -> str | None:
    """None when the onnxruntime session's inputs and outputs are model.json's (names in order,
    dtypes, shapes) and those the reader uses; else the reason, naming the file."""
    entry = manifest["graphs"][graph]
    file, (inputs, outputs) = entry["file"], io_names(manifest, graph)
    for kind, declared, actual, expected in (
        ("input", entry.get("inputs") or [], session.get_inputs(), inputs),
        ("output", entry.get("outputs") or [], session.get_outputs(), outputs),
    ):
        names = [d.get("name") for d in declared]
        for whose, found, wanted, says in (
            (MANIFEST_FILE, names, expected, "this reader needs"),
            (file, [a.name for a in actual], names, f"{MANIFEST_FILE} declares"),
        ):
            if found != wanted:
                return (
                    f"bundle {bundle_path}: {whose} does not match the {graph} graph's signature: "
                    f"{_difference(kind, found, wanted, says)}"
                )
        for spec, arg in zip(declared, actual, strict=True):
            dtype = ORT_DTYPES.get(arg.type, arg.type)
            if dtype != spec.get("dtype") or not _shape_fits(arg.shape, spec.get("shape") or []):
                return (
                    f"bundle {bundle_path}: {file}'s {arg.name} is {dtype}{list(arg.shape)}, "
                    f"{MANIFEST_FILE} declares {spec.get('dtype')}{spec.get('shape')}"
                )
    return None


def _difference(kind: str, names: list, reference: list, says: str) -> str:
    """Where a list of tensor names first departs from `reference`, in words."""
    for i, (name, wanted) in enumerate(zip(names, reference, strict=False)):
        if name != wanted:
            return f"its {kind} {i + 1} is {name!r} where {says} {wanted!r}"
    return f"it has {len(names)} {kind}s where {says} {len(reference)}"


def _shape_fits(actual, declared) -> bool:
    """A graph's shape (ints, or names/None for dynamic axes) matches model.json's (ints, or "B"/"C")."""
    fits = (a == d if isinstance(d, int) else not isinstance(a, int) for a, d in zip(actual, declared, strict=False))
    return len(actual) == len(declared) and all(fits)
