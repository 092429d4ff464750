"""Node class descriptions: the static half of a fake node (what /object_info shows).

A :class:`NodeDef` holds the input spec in ComfyUI's V1 format
(``{name: [TYPE, {opts}]}`` where TYPE is a type string or a list of combo
options) plus the output description.  Combo option lists that depend on the
server state (LoadImage's file list, model folders) are given as callables
taking the simulator context and are resolved on every request.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional

# One input spec: a list [TYPE] or [TYPE, opts], or a callable ctx -> such a list.
InputSpec = Any


@dataclasses.dataclass
class NodeDef:
    """Static description of one node class (everything /object_info reports)."""

    name: str
    display_name: Optional[str] = None
    category: str = "image"
    description: str = ""
    python_module: str = "nodes"
    required: Dict[str, InputSpec] = dataclasses.field(default_factory=dict)
    optional: Dict[str, InputSpec] = dataclasses.field(default_factory=dict)
    hidden: Dict[str, str] = dataclasses.field(default_factory=dict)
    outputs: List[str] = dataclasses.field(default_factory=list)
    output_names: Optional[List[str]] = None
    output_node: bool = False
    output_tooltips: Optional[List[str]] = None
    # runtime behaviour key used by the engine (defaults to the class name)
    behaviour: Optional[str] = None

    def resolved_inputs(self, ctx) -> Dict[str, Dict[str, list]]:
        """Return ``{"required": {...}, "optional": {...}}`` with callables resolved."""
        out: Dict[str, Dict[str, list]] = {}
        for section in ("required", "optional"):
            specs = getattr(self, section)
            if specs:
                out[section] = {name: _resolve(spec, ctx) for name, spec in specs.items()}
        return out

    def input_spec(self, ctx, name: str) -> Optional[list]:
        """The resolved spec of input ``name`` (required or optional), or None."""
        for section in (self.required, self.optional):
            if name in section:
                return _resolve(section[name], ctx)
        return None

    def object_info(self, ctx) -> Dict[str, Any]:
        """The INFO dict of GET /object_info for this class (0.3.64 key order)."""
        inputs: Dict[str, Any] = dict(self.resolved_inputs(ctx))
        if "required" not in inputs:
            inputs = {"required": {}, **inputs}
        if self.hidden:
            inputs["hidden"] = dict(self.hidden)
        order = {section: list(specs.keys()) for section, specs in inputs.items()}
        info: Dict[str, Any] = {
            "input": inputs,
            "input_order": order,
            "output": list(self.outputs),
            "output_is_list": [False] * len(self.outputs),
            "output_name": list(self.output_names or self.outputs),
            "name": self.name,
            "display_name": self.display_name if self.display_name is not None else self.name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }
        if self.output_tooltips:
            info["output_tooltips"] = list(self.output_tooltips)
        return info


def _resolve(spec: InputSpec, ctx) -> list:
    if callable(spec):
        return spec(ctx)
    return spec


def input_type(spec: list) -> Any:
    """The TYPE part of a resolved input spec (a string or a list of options)."""
    return spec[0]


def input_opts(spec: list) -> Dict[str, Any]:
    """The options dict of a resolved input spec ({} when absent)."""
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def passthrough_def(name: str) -> NodeDef:
    """A simple extra node: optional IMAGE in, IMAGE out; an output node so it can run alone."""
    return NodeDef(
        name=name,
        category="fake/extra",
        python_module="custom_nodes.fake_extra",
        description="Pass-through node added by the fake ComfyUI (extra_nodes).",
        optional={"image": ["IMAGE"], "value": ["*", {}]},
        outputs=["IMAGE"],
        output_node=True,
        behaviour="Passthrough",
    )


Ctx = Callable[..., Any]
