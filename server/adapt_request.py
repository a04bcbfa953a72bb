"""POST /api/adapt's request and answer: the pydantic models (and so the OpenAPI schema), JSON
parsing, and the validation of the structure (fields, types, labels, counts, limits) into a Plan.

The structure is checked here, on the event loop, before any work is queued; the images are
decoded later on a pool worker (server/images.py), so decoding is bounded by the same pool as the
ONNX work. Every error names what is wrong and where.
"""

import json
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

IMAGE_SIDE = 28

IMAGE_SCHEMA = {
    "description": "A drawing: a PNG (dark ink on a light background, any size up to the server's limits), "
    "as base64 or as a `data:image/png;base64,` URL, preprocessed by the bundle's preprocessing spec; or a "
    "28x28 array (rows of numbers in [0, 1], ink = 1) that is already model input.",
    "anyOf": [
        {"type": "string", "title": "PNG (base64 or data URL)"},
        {
            "type": "array",
            "title": "28x28 model input",
            "minItems": IMAGE_SIDE,
            "maxItems": IMAGE_SIDE,
            "items": {
                "type": "array",
                "minItems": IMAGE_SIDE,
                "maxItems": IMAGE_SIDE,
                "items": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
    ],
}
Image = Annotated[Any, WithJsonSchema(IMAGE_SCHEMA)]


class SupportExample(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    image: Image
    label: int = Field(description="The class, 0..N-1; every class 0..N-1 needs at least one example.")


class QueryExample(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    image: Image


# A complete request (two 24x24 drawings, an X and a +, and a query X), for the docs' "Try it out".
EXAMPLE_X = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABgAAAAYCAAAAADFHGIkAAAAbUlEQVR42p2SMQ7AMAgDMf//szvQJr6oS5s"
    "FxYcItiLX++n6BwRNCwhkbn13CP0a4JymGqWL5NHvx1050bGuYwfDhzEnDfqo27mhBxAzaOq79uFrkYYepNnvM11ulenSR6Rr+Nnp5peY"
    "mz7/kgtw2yEvJp2+nwAAAABJRU5ErkJggg=="
)
EXAMPLE_PLUS = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABgAAAAYCAAAAADFHGIkAAAALUlEQVR42mP8z4AdMDGQKsGCxGZkYPhPgV"
    "EDKsH4n4GBEVP4P5lGDZcgIU0HABQcByvQFBuXAAAAAElFTkSuQmCC"
)
EXAMPLE_QUERY = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABgAAAAYCAAAAADFHGIkAAAAZElEQVR42q2SQRLAIAgDDf//c3qwlI3To14"
    "QEiJhlNf/qXUbEEoCICDvvZoj8NWAR0GdbylHn/G4oe4Y16FDHz7iGHTUASidVtYnFnP4iV2ZSCV/kDrm/5AKLu69K8PP7rr3GR4Fuh0v"
    "ZjIvXQAAAABJRU5ErkJggg=="
)
EXAMPLE_REQUEST = {
    "support": [{"image": EXAMPLE_X, "label": 0}, {"image": EXAMPLE_PLUS, "label": 1}],
    "query": [{"image": EXAMPLE_QUERY}],
    "steps": 10,
}


class AdaptRequest(BaseModel):
    """Adapt the model to the support set (labelled drawings), then classify the queries."""

    model_config = ConfigDict(
        extra="forbid", strict=True, title="AdaptRequest", json_schema_extra={"examples": [EXAMPLE_REQUEST]}
    )
    support: list[SupportExample] = Field(
        description="The labelled drawings: 2-10 classes, 1-5 per class by default (see /api/model limits)."
    )
    query: list[QueryExample] = Field(description="The drawings to classify (at least one).")
    steps: int | None = Field(None, description="Adaptation steps (default: the bundle's).")
    lr: Annotated[float, Field(allow_inf_nan=False)] | None = Field(
        None, description="Learning rate (default: the bundle's)."
    )
    transductive: bool | None = Field(
        None, description="Classify all queries in one batch (needs >= 2 queries; default: the bundle's)."
    )
    optimizer: Literal["adam", "sgd"] | None = Field(
        None,
        description="The adaptation steps' optimizer (default: the bundle's, adam, continuing its carried "
        "state); another one needs lr, since the bundle's default lr is for its own optimizer.",
    )


class Timing(BaseModel):
    queue_ms: float = Field(description="Waiting for a worker.")
    preprocess_ms: float = Field(description="Decoding and preprocessing the images.")
    adapt_ms: float = Field(description="The adaptation steps and the predictions.")


class AdaptResponse(BaseModel):
    probabilities: list[list[float]] = Field(description="Per query, the probability of each class.")
    predictions: list[int] = Field(description="Per query, the most probable class.")
    unknown: list[bool] | None = Field(
        description='Per query, whether it is like none of the classes ("none of these"): its unknown score '
        "is above the threshold of the task's setting, the classes x the fewest examples any class has. "
        "null when the model has no open-set score (/api/model `open_set` is false)."
    )
    unknown_scores: list[float] | None = Field(
        description="Per query, the open-set score in (0, 1): higher = less like any class. Computed from the "
        "query predicted in one batch with the support set, also when the probabilities are transductive "
        "(the thresholds were fitted on those batches). null when the model has no open-set score."
    )
    losses: list[float] = Field(description="Per step, the summed cross-entropy of the support set before it.")
    elapsed_ms: float = Field(description="Server time from receiving the request to the result.")
    classes: int
    steps: int
    lr: float
    transductive: bool
    optimizer: str
    model: str = Field(description="The bundle's name.")
    warning: str | None = Field(description="The bundle's warning (e.g. not the fully trained model), or null.")
    timing: Timing


class ErrorResponse(BaseModel):
    detail: str = Field(description="What is wrong, naming the field or image.")
    errors: list[str] | None = Field(None, description="Every problem found, when there are several.")


class InputError(ValueError):
    """Invalid input: answered with `status` and the message (which names the field or image)."""

    def __init__(self, message: str, status: int = 422, errors: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.errors = errors
        self.headers = headers


# ---------------------------------------------------------------------------- parsing and validation
def _reject_constant(name):
    """json.loads' parse_constant: NaN, Infinity and -Infinity are refused."""
    raise InputError(f"malformed JSON: {name} is not allowed (numbers must be finite)", status=422)


class _TooManyDigits:
    """Stands in for an integer literal over the interpreter's integer-string limit (4,300 digits),
    so that the error can name where it is."""

    def __init__(self, digits: int):
        self.digits = digits


def _int_or_marker(text: str):
    """json.loads' parse_int for the second parse: the integer, or a _TooManyDigits marker."""
    try:
        return int(text)
    except ValueError:
        return _TooManyDigits(len(text.lstrip("-")))


def _too_many_digits(data) -> InputError:
    """The error for a body whose parse marked integers over the limit, naming where the first one is."""
    stack = [((), data)]
    while stack:  # depth-first in document order, without recursion
        where, value = stack.pop()
        if isinstance(value, _TooManyDigits):
            return InputError(f"{_loc(where)}: the number has too many digits ({value.digits})")
        if isinstance(value, dict):
            stack.extend(((*where, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*where, i), item) for i, item in reversed(list(enumerate(value))))
    return InputError("body: a number has too many digits")


def _loads(text: str, parse_int=None):
    """json.loads with NaN and Infinity refused; 400 for malformed JSON."""
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=parse_int)
    except json.JSONDecodeError as error:
        raise InputError(
            f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}", status=400
        ) from None
    except RecursionError:
        raise InputError("malformed JSON: nested too deeply", status=400) from None


def parse_json(body: bytes):
    """bytes -> JSON value; 400 for malformed JSON, 422 for NaN/Infinity literals and for integers
    over the interpreter's integer-string limit (naming where)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"malformed JSON: the body is not UTF-8 ({error.reason} at byte {error.start})", status=400
        ) from None
    try:
        return _loads(text)
    except InputError:
        raise
    except ValueError:  # an integer over sys.get_int_max_str_digits(); parsed again (rare) to say where
        raise _too_many_digits(_loads(text, _int_or_marker)) from None


def _loc(loc) -> str:
    """('support', 1, 'image') -> 'support[1].image' (a long field name is cut short)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]" if out else f"body[{part}]"
        else:
            name = part if len(part) <= 40 else part[:40] + "..."
            out += f".{name}" if out else name
    return out or "body"


def number_text(value) -> str:
    """A number for an error message; an integer too long to read is described by its length."""
    if isinstance(value, int) and not -(10**15) < value < 10**15:
        return f"a number with {len(str(abs(value)))} digits"
    return f"{value:g}" if isinstance(value, float) else str(value)


def json_kind(value) -> str:
    """The JSON type of a parsed value, as an error message names it ('an array', 'null', ...)."""
    kinds = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }
    return "null" if value is None else kinds.get(type(value), "a value of another type")


_PROBLEMS = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "finite_number": "must be a finite number (NaN and infinity are not allowed)",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_parsing_size": "must be an integer (this one has too many digits)",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}


def problem(item: dict) -> str:
    """One pydantic error -> what is wrong, in the API's words (never the input's value or a class name)."""
    kind, ctx = item.get("type", ""), item.get("ctx") or {}
    if kind == "float_type" and type(item.get("input")) is int:
        return "the number is too large"
    if kind in _PROBLEMS:
        return _PROBLEMS[kind]
    bounds = {
        "greater_than_equal": "at least",
        "greater_than": "more than",
        "less_than_equal": "at most",
        "less_than": "less than",
    }
    bound = next((ctx[key] for key in ("ge", "gt", "le", "lt") if key in ctx), None)
    if kind in bounds and bound is not None:
        return f"must be {bounds[kind]} {bound}"
    if kind == "literal_error" and "expected" in ctx:
        return f"must be {ctx['expected']}"
    return "is not valid"


def format_validation_error(error: ValidationError) -> InputError:
    """pydantic's errors -> one InputError (422) listing each problem with where it is."""
    messages = [f"{_loc(item['loc'])}: {problem(item)}" for item in error.errors(include_url=False)]
    detail = (
        messages[0]
        if len(messages) == 1
        else f"{len(messages)} problems: " + "; ".join(messages[:5]) + ("; ..." if len(messages) > 5 else "")
    )
    return InputError(detail, status=422, errors=messages)


class Plan:
    """A validated request: what to run, with every default filled in."""

    def __init__(self, support, labels, queries, classes, steps, lr, transductive, optimizer):
        self.support, self.labels, self.queries = support, labels, queries
        self.classes, self.steps, self.lr = classes, steps, lr
        self.transductive, self.optimizer = transductive, optimizer


def validate_request(data, limits: dict, defaults: dict) -> Plan:
    """The parsed JSON -> Plan, or InputError. limits: min/max classes and shots, max_steps, max_lr,
    max_queries (already narrowed to the bundle). defaults: the bundle's adaptation section."""
    if not isinstance(data, dict):
        raise InputError(f"body: must be a JSON object with support and query, got {json_kind(data)}")
    try:
        request = AdaptRequest.model_validate(data)
    except ValidationError as error:
        raise format_validation_error(error) from None
    if not request.support:
        raise InputError("support: needs at least one labelled example per class")
    values = [s.label for s in request.support]
    for where, label in enumerate(values):
        if label < 0:
            raise InputError(f"support[{where}].label: labels are 0..N-1, got {number_text(label)}")
    if max(values) >= limits["max_classes"]:
        top = max(values)
        shown = top if top < 10**6 else "a huge number"
        raise InputError(
            f"too many classes: the labels go up to {shown}, so {shown if top >= 10**6 else top + 1} "
            f"classes; at most {limits['max_classes']} are supported (labels 0..{limits['max_classes'] - 1})"
        )
    labels = np.array(values, dtype=np.int64)
    classes = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=classes)
    missing = [c for c in range(classes) if counts[c] == 0]
    if missing:
        raise InputError(
            f"class {missing[0]} has no example: labels must be 0..N-1 with every class present "
            f"(labels given: {sorted(set(labels.tolist()))})"
        )
    if classes < limits["min_classes"]:
        raise InputError(f"too few classes: {classes}; at least {limits['min_classes']} are needed")
    if counts.max() > limits["max_shots"]:
        worst = int(np.argmax(counts))
        raise InputError(
            f"too many examples for class {worst}: {counts[worst]}; at most {limits['max_shots']} per class"
        )
    if counts.min() < limits["min_shots"]:
        worst = int(np.argmin(counts))
        raise InputError(
            f"too few examples for class {worst}: {counts[worst]}; at least {limits['min_shots']} per class"
        )
    if len(labels) < 2:
        raise InputError("support: needs at least 2 examples (BatchNorm uses batch statistics)")
    if not request.query:
        raise InputError("query: needs at least one drawing to classify")
    if len(request.query) > limits["max_queries"]:
        raise InputError(f"too many queries: {len(request.query)}; at most {limits['max_queries']}")
    steps = defaults["steps"] if request.steps is None else request.steps
    if not 0 <= steps <= limits["max_steps"]:
        raise InputError(f"steps: must be an integer 0..{limits['max_steps']}, got {number_text(steps)}")
    lr = defaults["lr"] if request.lr is None else request.lr
    if not 0 < lr <= limits["max_lr"]:
        raise InputError(f"lr: must be > 0 and <= {limits['max_lr']:g}, got {number_text(lr)}")
    optimizer = defaults["optimizer"] if request.optimizer is None else request.optimizer
    if optimizer != defaults["optimizer"] and request.lr is None:
        raise InputError(
            f"lr: required with optimizer {optimizer!r} (the default lr, {defaults['lr']:g}, is for "
            f"{defaults['optimizer']!r})"
        )
    transductive = defaults["transductive"] if request.transductive is None else request.transductive
    if transductive and len(request.query) < 2:
        raise InputError(
            "transductive: needs at least 2 queries (they are normalised as one batch); "
            "send more queries or transductive: false"
        )
    return Plan(
        [s.image for s in request.support],
        labels,
        [q.image for q in request.query],
        classes,
        steps,
        float(lr),
        bool(transductive),
        optimizer,
    )
