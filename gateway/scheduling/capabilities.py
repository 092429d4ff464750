"""What a worker can run (from its /object_info) and what a workflow needs.

Rule for choices (kept deliberately simple): every literal value a workflow
gives to an input that the worker declares as a combo must be one of that
worker's options.  For loader inputs (checkpoints, LoRAs, images, ...) a
missing option means the file is not on that worker; for other combos
(``upscale_method: "bogus"``) the worker would reject the value as well, so
it is reported too.  :func:`is_file_like` only changes the wording.

Values that cannot be checked against a combo list are not requirements:
links, files the gateway uploads itself before dispatch (``known_uploads``,
also written with a ``" [input]"`` suffix), and ``" [output]"`` / ``" [temp]"``
annotated names (they point at a worker's own output folders, which no combo
lists).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable

FILE_EXTENSIONS = frozenset({
    ".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx", ".pkl",
    ".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff",
    ".mp4", ".webm", ".mov", ".wav", ".mp3", ".flac", ".ogg", ".yaml", ".json", ".txt",
})
FILE_INPUT_NAMES = frozenset({
    "image", "video", "audio", "ckpt_name", "lora_name", "vae_name", "unet_name", "clip_name",
    "clip_name1", "clip_name2", "clip_name3", "control_net_name", "model_name", "style_model_name",
    "gligen_name", "config_name", "upscale_model", "hypernetwork_name", "embedding",
})
ANNOTATIONS = (" [input]", " [output]", " [temp]")
FITS_CACHE_LIMIT = 4096  # distinct requirements remembered per worker node list

ValueRef = tuple  # (node_id, class_type, input_name, value)


def is_link(value: Any) -> bool:
    """True for ComfyUI's link form ``[source_node_id, output_index]``."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int) \
        and not isinstance(value[1], bool)


def is_file_like(input_name: str, value: Any) -> bool:
    """True when an input/value pair looks like a loader naming a file."""
    if input_name in FILE_INPUT_NAMES or input_name.endswith("_name"):
        return True
    if isinstance(value, str):
        return os.path.splitext(value.strip())[1].lower() in FILE_EXTENSIONS
    return False


def strip_annotation(name: str) -> tuple[str, str | None]:
    """Split ``"x.png [output]"`` into ``("x.png", "output")``; no suffix gives ``(name, None)``."""
    for suffix in ANNOTATIONS:
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix.strip(" []")
    return name, None


def _combo_options(spec: Any) -> frozenset | None:
    """The allowed values of one input spec when it is a combo (V1 list or V3 COMBO), else None."""
    if not isinstance(spec, (list, tuple)) or not spec:
        return None
    kind = spec[0]
    if isinstance(kind, (list, tuple)):
        return frozenset(v for v in kind if _hashable(v))
    if kind == "COMBO":
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        return frozenset(v for v in opts.get("options", []) or [] if _hashable(v))
    return None


def _hashable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


@dataclass(frozen=True)
class Requirements:
    """What a workflow needs: its node types and its literal input values.

    Used as a dict key by every worker's eligibility cache (:meth:`Capabilities.can_run`), so its hash is
    computed once; the jobs service also shares one instance among jobs with equal requirements.
    """

    class_types: frozenset = frozenset()
    values: tuple = ()  # of (node_id, class_type, input_name, value)
    _hash: int = field(default=0, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.class_types, self.values)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class Missing:
    """Why a worker cannot run a workflow (empty when it can)."""

    node_types: tuple = ()
    files: tuple = ()  # of (node_id, class_type, input_name, value)
    reasons: tuple = ()  # other reasons in plain words: "offline", "failed there before", ...

    @property
    def empty(self) -> bool:
        """True when nothing is missing."""
        return not (self.node_types or self.files or self.reasons)

    def describe(self) -> str:
        """Short English text, e.g. "missing node types: Foo; missing file: ckpt_name 'x.safetensors' (node 4)"."""
        parts: list[str] = list(self.reasons)
        if self.node_types:
            label = "node type" if len(self.node_types) == 1 else "node types"
            parts.append(f"missing {label}: {', '.join(self.node_types)}")
        files = [f for f in self.files if is_file_like(f[2], f[3])]
        others = [f for f in self.files if not is_file_like(f[2], f[3])]
        if files:
            label = "file" if len(files) == 1 else "files"
            parts.append(f"missing {label}: " + ", ".join(_ref(f) for f in files))
        if others:
            label = "value" if len(others) == 1 else "values"
            parts.append(f"unsupported {label}: " + ", ".join(_ref(f) for f in others))
        return "; ".join(parts) if parts else "nothing missing"


def _ref(item: ValueRef) -> str:
    node_id, class_type, input_name, value = item
    return f"{input_name} {value!r} ({class_type} node {node_id})"


@dataclass(frozen=True)
class Capabilities:
    """A worker's node types and, per (class_type, input_name) combo, its allowed values."""

    node_types: frozenset = frozenset()
    combos: dict = field(default_factory=dict)  # (class_type, input_name) -> frozenset of values
    output_nodes: frozenset = frozenset()
    # Requirements -> bool: what can_run answered. A new node list is a new Capabilities object, so the
    # cache never outlives what it was computed from.
    _fits: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_object_info(cls, object_info: dict) -> "Capabilities":
        """Build from a GET /object_info body (``{class_type: INFO}``)."""
        combos: dict = {}
        outputs = set()
        for class_type, info in (object_info or {}).items():
            if not isinstance(info, dict):
                continue
            if info.get("output_node") is True:
                outputs.add(class_type)
            sections = info.get("input") or {}
            for section in ("required", "optional"):
                for name, spec in (sections.get(section) or {}).items():
                    options = _combo_options(spec)
                    if options is not None:
                        combos[(class_type, name)] = options
        return cls(frozenset(object_info or {}), combos, frozenset(outputs))

    def missing(self, req: Requirements) -> Missing:
        """What this worker lacks to run a workflow with these requirements."""
        node_types = tuple(sorted(t for t in req.class_types if t not in self.node_types))
        files = []
        for ref in req.values:
            _node_id, class_type, input_name, value = ref
            options = self.combos.get((class_type, input_name))
            if class_type in self.node_types and options is not None and value not in options:
                files.append(ref)
        return Missing(node_types, tuple(files))

    def can_run(self, req: Requirements) -> bool:
        """True when nothing is missing for these requirements (remembered per distinct requirements).

        The scheduler asks this for every (job, worker) pair it considers and every submission asks it
        of every worker; with hundreds of workers the full :meth:`missing` each time dominated both.
        """
        fits = self._fits.get(req)
        if fits is None:
            if len(self._fits) >= FITS_CACHE_LIMIT:
                self._fits.clear()  # many distinct workflows: start over rather than grow without bound
            fits = self._fits[req] = self.missing(req).empty
        return fits


def normalise_uploads(known_uploads: Iterable[str]) -> frozenset:
    """Upload names as a workflow may write them: "name.png", "sub/name.png", without annotation."""
    out = set()
    for name in known_uploads or ():
        bare, _ = strip_annotation(str(name))
        out.add(bare.replace("\\", "/").lstrip("/"))
    return frozenset(out)


def requirements_of(prompt: dict, known_uploads: Iterable[str] = frozenset()) -> Requirements:
    """The class_types an API-format prompt uses and its literal values that a worker must accept."""
    uploads = normalise_uploads(known_uploads)
    class_types = set()
    values = []
    for node_id, node in (prompt or {}).items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            continue
        class_type = node["class_type"]
        class_types.add(class_type)
        inputs = node.get("inputs") or {}
        if not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            if isinstance(value, dict) and "__value__" in value:
                continue  # literal lists are never combo values
            if not _hashable(value) or value is None:
                continue
            if isinstance(value, str):
                bare, annotation = strip_annotation(value)
                if annotation in ("output", "temp"):
                    continue
                if annotation == "input":
                    value = bare
                if bare.replace("\\", "/").lstrip("/") in uploads:
                    continue
            values.append((str(node_id), class_type, name, value))
    return Requirements(frozenset(class_types), tuple(values))
