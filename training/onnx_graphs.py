"""Trace, export and check the bundle's three ONNX graphs (docs/bundle.md).

Three plain single-model graphs, all with a dynamic batch B >= 2 and a dynamic class count C >= 2
(the head's weight [C, F] and bias [C] are graph inputs):

  predict.onnx           parameters, images [B,1,28,28]                  -> logits [B,C], probabilities [B,C],
                                                                            features [B,D] (every block's output)
  train_step_sgd.onnx    parameters, images, labels int64 [B], lr        -> updated parameters, loss
  train_step_adam.onnx   parameters, adam v, images, labels, lr, t, eps  -> updated parameters, updated v, loss

Each is traced with make_fx(tracing_mode="symbolic") over training/onnx_ops.py's functions, exported
with torch.onnx.export(dynamo=True) at opset 18, stripped of debugging text, and run once in
onnxruntime against eager torch. eps is a graph input because the exporter's optimizer drops
constants <= 1e-8.
"""

from pathlib import Path

import numpy as np
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from bundle.format import ADAM_V_PREFIX, UPDATED_PREFIX

from .model import ModelSpec, init_params
from .onnx_ops import ADAM_EPS, adam_update, decompositions, single_forward, single_loss

OPSET = 18


def graph_signatures(spec: ModelSpec) -> dict:
    """Input and output names/shapes/dtypes of the three graphs ("B" = batch, "C" = classes)."""
    names = spec.param_names()
    shapes = [list(s) for s in param_shapes(spec, "C")]
    params = [{"name": n, "shape": s, "dtype": "float32"} for n, s in zip(names, shapes, strict=False)]
    adam_v = [{"name": ADAM_V_PREFIX + n, "shape": s, "dtype": "float32"} for n, s in zip(names, shapes, strict=False)]
    images = {"name": "images", "shape": ["B", spec.channels, spec.image_size, spec.image_size], "dtype": "float32"}
    labels = {"name": "labels", "shape": ["B"], "dtype": "int64"}

    def scalar(name):
        return {"name": name, "shape": [], "dtype": "float32"}

    def updated(entries):
        return [dict(e, name=UPDATED_PREFIX + e["name"]) for e in entries]

    return {
        "predict": {
            "inputs": params + [images],
            "outputs": [
                {"name": "logits", "shape": ["B", "C"], "dtype": "float32"},
                {"name": "probabilities", "shape": ["B", "C"], "dtype": "float32"},
                {"name": "features", "shape": ["B", feature_blocks_size(spec)], "dtype": "float32"},
            ],
        },
        "train_step_sgd": {
            "inputs": params + [images, labels, scalar("lr")],
            "outputs": updated(params) + [scalar("loss")],
        },
        "train_step_adam": {
            "inputs": params + adam_v + [images, labels, scalar("lr"), scalar("t"), scalar("eps")],
            "outputs": updated(params) + updated(adam_v) + [scalar("loss")],
        },
    }


def feature_blocks_size(spec: ModelSpec) -> int:
    """The predict graph's `features` per image: every conv block's output, flattened, concatenated."""
    return sum(f * h * w for f, h, w in spec.block_shapes())


def param_shapes(spec: ModelSpec, classes):
    """The parameters' shapes with the head's row count replaced by `classes` (an int or "C")."""
    shapes = [tuple(p.shape) for p in init_params(spec, torch.Generator().manual_seed(0))]
    shapes[-2] = (classes,) + shapes[-2][1:]
    shapes[-1] = (classes,)
    return shapes


def _graph_function(spec: ModelSpec, kind: str):
    """The function traced for graph `kind`: flat tensors in, in signature order; a tuple out."""
    n = len(spec.param_names())

    def loss_fn(params, images, labels):
        return single_loss(spec, params, images, labels)

    if kind == "predict":

        def fn(*args):
            logits, features = single_forward(spec, args[:n], args[n], with_blocks=True)
            return logits, torch.softmax(logits, dim=-1), features
    elif kind == "train_step_sgd":

        def fn(*args):
            params, images, labels, lr = args[:n], args[n], args[n + 1], args[n + 2]
            grads, loss = torch.func.grad_and_value(loss_fn)(params, images, labels)
            return tuple(p - lr * g for p, g in zip(params, grads, strict=False)) + (loss,)
    elif kind == "train_step_adam":

        def fn(*args):
            params, v = args[:n], args[n : 2 * n]
            images, labels, lr, t, eps = args[2 * n : 2 * n + 5]
            grads, loss = torch.func.grad_and_value(loss_fn)(params, images, labels)
            new_params, new_v = adam_update(params, grads, v, lr, t, eps)
            return tuple(new_params) + tuple(new_v) + (loss,)
    else:
        raise ValueError(f"unknown graph {kind!r}")
    return fn


def _example_inputs(spec: ModelSpec, kind: str, batch: int = 6, classes: int = 3) -> list:
    """Deterministic inputs for graph `kind` to trace with and to check the written graph on."""
    generator = torch.Generator().manual_seed(0)
    params = init_params(spec, generator)
    params[-2] = torch.randn(classes, params[-2].shape[1], generator=generator) * 0.01
    params[-1] = torch.zeros(classes)
    images = torch.rand(batch, spec.channels, spec.image_size, spec.image_size, generator=generator)
    labels = torch.arange(batch) % classes
    scalar = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    if kind == "predict":
        return params + [images]
    if kind == "train_step_sgd":
        return params + [images, labels, scalar(1e-3)]
    return (
        params
        + [torch.full_like(p, 1e-6) for p in params]
        + [images, labels, scalar(1e-3), scalar(1.0), scalar(ADAM_EPS)]
    )


def strip_model(model) -> None:
    """Drop what only debugging needs (doc strings, per-node metadata such as source stack traces,
    intermediate value_info): a few hundred KB of text otherwise."""
    model.doc_string = ""
    del model.metadata_props[:]
    graphs = [model.graph] + [a.g for node in model.graph.node for a in node.attribute if a.g.node]
    for graph in graphs:
        graph.doc_string = ""
        del graph.value_info[:]
        for node in graph.node:
            node.doc_string = ""
            del node.metadata_props[:]
    for function in model.functions:
        function.doc_string = ""
        for node in function.node:
            node.doc_string = ""
            del node.metadata_props[:]


def export_graph(spec: ModelSpec, kind: str, path: Path) -> None:
    """Trace one graph and write it, stripped, to path."""
    from torch.export import Dim

    dims = {"B": Dim("batch", min=2), "C": Dim("classes", min=2)}
    signature = graph_signatures(spec)[kind]
    export_function(_graph_function(spec, kind), _example_inputs(spec, kind), signature, dims, kind, path)


def export_function(fn, example: list, signature: dict, dims: dict, kind: str, path: Path) -> None:
    """Trace fn (flat tensors in, in signature order; a tuple out) on the example inputs with make_fx under
    decompositions(), export it at OPSET with the signature's names and its named axes dynamic (dims:
    axis name -> torch.export.Dim), strip it, write it to path and check it against eager torch."""
    import onnx

    traced = make_fx(fn, decomposition_table=decompositions(), tracing_mode="symbolic")(*example)
    dynamic_shapes = tuple(
        {axis: dims[d] for axis, d in enumerate(entry["shape"]) if isinstance(d, str)} for entry in signature["inputs"]
    )
    import logging
    import warnings

    registration_log = logging.getLogger(
        "torch.onnx._internal.exporter._registration"
    )  # "torchvision is not installed"
    level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                traced,
                tuple(example),
                dynamic_shapes=dynamic_shapes,
                dynamo=True,
                input_names=[e["name"] for e in signature["inputs"]],
                output_names=[e["name"] for e in signature["outputs"]],
                opset_version=OPSET,
                verbose=False,
                report=False,
            )
    finally:
        registration_log.setLevel(level)
    model = program.model_proto
    strip_model(model)
    onnx.checker.check_model(model)
    got_inputs = [i.name for i in model.graph.input]
    got_outputs = [o.name for o in model.graph.output]
    if got_inputs != [e["name"] for e in signature["inputs"]] or got_outputs != [
        e["name"] for e in signature["outputs"]
    ]:
        raise RuntimeError(f"{kind}: the exported graph's inputs/outputs are not the declared ones")
    Path(path).write_bytes(model.SerializeToString())
    _check_graph(path, kind, fn, example)


def _check_graph(path: Path, kind: str, fn, example: list, tolerance: float = 1e-4) -> None:
    """Run the written graph in onnxruntime on the example inputs and compare with eager torch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), example, strict=False)}
    got = session.run(None, feed)
    with torch.no_grad() if kind == "predict" else torch.enable_grad():
        expected = [x.detach().numpy() for x in fn(*example)]
    for output, a, b in zip(session.get_outputs(), got, expected, strict=False):
        error = float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max())))
        if a.shape != b.shape or not error <= tolerance:
            raise RuntimeError(f"{kind}: onnxruntime disagrees with torch on {output.name} (error {error:.2e})")
