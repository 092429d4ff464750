"""POST /prompt validation against a cached /object_info, answering as ComfyUI 0.3.64 does.

Mirrors ``execution.validate_prompt``/``validate_inputs`` of ComfyUI 0.3.64
(comfyui-api.md §3.3): same error types, messages, ``details`` and
``extra_info``, same ``dependent_outputs`` quirk (every failed output is added
to every invalid node seen so far).  Where ComfyUI iterates Python sets (whose
order varies between runs) this module uses a fixed order: outputs in prompt
order, inputs in declared order (required, then optional).

Nodes' own VALIDATE_INPUTS are not visible in /object_info; LoadImage-style
image inputs are checked as ComfyUI's ``exists_annotated_filepath`` would: the
file is listed in the combo, or is a file the gateway uploads itself
(``known_uploads``), or carries an ``[output]``/``[temp]`` annotation (not
checkable here, the worker decides).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable

from .capabilities import normalise_uploads, strip_annotation

# Nodes whose VALIDATE_INPUTS(image) replaces the combo check by a file-exists check.
IMAGE_FILE_NODES = frozenset({"LoadImage", "LoadImageMask"})


@dataclass
class ValidationResult:
    """``ok`` with ``node_errors`` (possibly non-empty), or not ok with the 400 ``error_body``."""

    ok: bool
    node_errors: dict = field(default_factory=dict)
    error_body: dict | None = None
    outputs: list = field(default_factory=list)  # the output node ids that will run

    @property
    def status(self) -> int:
        """HTTP status ComfyUI answers with: 200 or 400."""
        return 200 if self.ok else 400

    def __iter__(self):
        """Unpack as ``status, body``: the 400 body, or ``{"node_errors": ...}`` on success."""
        return iter((self.status, self.error_body if not self.ok else {"node_errors": self.node_errors}))


def _fail(kind: str, message: str, details: str, node_errors: dict | None = None) -> ValidationResult:
    body = {"error": {"type": kind, "message": message, "details": details, "extra_info": {}},
            "node_errors": node_errors or {}}
    return ValidationResult(False, node_errors or {}, body)


def _input_info(info: dict, name: str) -> tuple[Any, str | None, dict]:
    """(input_type, category, extra_info) as ComfyUI's get_input_info returns them."""
    sections = info.get("input") or {}
    for category in ("required", "optional", "hidden"):
        spec = (sections.get(category) or {}).get(name)
        if spec is not None:
            if not isinstance(spec, (list, tuple)) or not spec:
                return spec, category, {}
            extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            return spec[0], category, extra
    return None, None, {}


def _declared_inputs(info: dict) -> list[str]:
    """Required then optional input names, in the node's declared order."""
    sections = info.get("input") or {}
    names: list[str] = []
    for category in ("required", "optional"):
        order = (info.get("input_order") or {}).get(category) or list(sections.get(category) or {})
        names += [n for n in order if n in (sections.get(category) or {}) and n not in names]
    return names


def _types_match(received: Any, wanted: Any) -> bool:
    """ComfyUI's validate_node_input (non-strict)."""
    if not received != wanted:
        return True
    if not isinstance(received, str) or not isinstance(wanted, str):
        return False
    got = {t.strip() for t in received.split(",")}
    want = {t.strip() for t in wanted.split(",")}
    return "*" in got or "*" in want or bool(got & want)


def _convert(input_type: Any, val: Any) -> Any:
    """ComfyUI's literal conversion (may raise like int()/float() do)."""
    if input_type == "INT":
        return int(val)
    if input_type == "FLOAT":
        return float(val)
    if input_type == "STRING":
        return str(val)
    if input_type == "BOOLEAN":
        return bool(val)
    return val


def _error(kind: str, message: str, details: str, **extra: Any) -> dict:
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


class _Validator:
    """One validation run: prompt, object_info and the per-node memo ``validated``."""

    def __init__(self, prompt: dict, object_info: dict, uploads: frozenset):
        self.prompt = prompt
        self.object_info = object_info
        self.uploads = uploads
        self.validated: dict[str, tuple[bool, list, str]] = {}

    def node(self, unique_id: str) -> tuple[bool, list, str]:
        """validate_inputs for one node (memoised); raises on a link to a node that does not exist."""
        if unique_id in self.validated:
            return self.validated[unique_id]
        inputs = self.prompt[unique_id].get("inputs") or {}
        class_type = self.prompt[unique_id]["class_type"]
        info = self.object_info[class_type]
        errors: list = []
        valid = True
        custom = ("image",) if class_type in IMAGE_FILE_NODES else ()
        custom_errors: list = []  # VALIDATE_INPUTS runs after the per-input checks
        for name in _declared_inputs(info):
            input_type, category, extra = _input_info(info, name)
            config = [input_type, extra]
            if name not in inputs:
                if category == "required":
                    errors.append(_error("required_input_missing", "Required input is missing", name,
                                         input_name=name))
                continue
            val = inputs[name]
            if isinstance(val, list):
                ok, err = self._linked(name, val, input_type, config)
                if err:
                    errors.append(err)
                valid = valid and ok
                continue
            err = self._literal(name, val, input_type, extra, config, skip_checks=name in custom)
            if err:
                errors.append(err)
            elif name in custom:
                err = self._image_file(name, val, config)
                if err:
                    custom_errors.append(err)
        errors += custom_errors
        ret = (not errors and valid, errors, unique_id)
        self.validated[unique_id] = ret
        return ret

    def _linked(self, name: str, val: list, input_type: Any, config: list) -> tuple[bool, dict | None]:
        if len(val) != 2:
            return True, _error("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                                name, input_name=name, input_config=config, received_value=val)
        o_id = val[0]
        outputs = self.object_info[self.prompt[o_id]["class_type"]].get("output") or []
        received = outputs[val[1]]
        if not _types_match(received, input_type):
            details = f"{name}, received_type({received}) mismatch input_type({input_type})"
            return True, _error("return_type_mismatch", "Return type mismatch between linked nodes", details,
                                input_name=name, input_config=config, received_type=received, linked_node=val)
        try:
            result = self.node(o_id)
        except Exception as ex:  # a broken link further up: ComfyUI reports it on that node
            self.validated[o_id] = (False, [_error(
                "exception_during_inner_validation", "Exception when validating inner node", str(ex),
                input_name=name, input_config=config, exception_message=str(ex),
                exception_type=_type_name(ex), traceback=[], linked_node=val)], o_id)
            return False, None
        return result[0] is not False, None

    def _literal(self, name: str, val: Any, input_type: Any, extra: dict, config: list,
                 skip_checks: bool) -> dict | None:
        if isinstance(val, dict) and "__value__" in val:
            val = val["__value__"]
        try:
            val = _convert(input_type, val)
        except Exception as ex:
            return _error("invalid_input_type", f"Failed to convert an input value to a {input_type} value",
                          f"{name}, {val}, {ex}", input_name=name, input_config=config, received_value=val,
                          exception_message=str(ex))
        if skip_checks:
            return None
        try:
            if "min" in extra and val < extra["min"]:
                return _error("value_smaller_than_min", f"Value {val} smaller than min of {extra['min']}", name,
                              input_name=name, input_config=config, received_value=val)
            if "max" in extra and val > extra["max"]:
                return _error("value_bigger_than_max", f"Value {val} bigger than max of {extra['max']}", name,
                              input_name=name, input_config=config, received_value=val)
        except TypeError:
            pass  # ComfyUI would raise here; the worker will answer for such a value
        if isinstance(input_type, list) or input_type == "COMBO":
            options = extra.get("options", []) if input_type == "COMBO" else input_type
            if val not in options:
                listed = str(options) if len(options) <= 20 else f"(list of length {len(options)})"
                return _error("value_not_in_list", "Value not in list", f"{name}: '{val}' not in {listed}",
                              input_name=name, input_config=config if len(options) <= 20 else None,
                              received_value=val)
        return None

    def _image_file(self, name: str, val: Any, config: list) -> dict | None:
        bare, annotation = strip_annotation(str(val))
        options = config[0] if isinstance(config[0], list) else (config[1] or {}).get("options", [])
        if annotation in ("output", "temp") or bare in options or bare.replace("\\", "/") in self.uploads:
            return None
        return _error("custom_validation_failed", "Custom validation failed for node",
                      f"{name} - Invalid image file: {val}", input_name=name, input_config=config,
                      received_value=val)


def _type_name(ex: BaseException) -> str:
    module = type(ex).__module__
    return type(ex).__qualname__ if module == "builtins" else f"{module}.{type(ex).__qualname__}"


def validate_prompt(prompt: Any, object_info: dict, known_uploads: Iterable[str] = frozenset(),
                    partial_execution_targets: list | None = None) -> ValidationResult:
    """Validate an API-format prompt as ComfyUI 0.3.64's POST /prompt does (None = no prompt given)."""
    if prompt is None:
        return _fail("no_prompt", "No prompt provided", "No prompt provided")
    outputs = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return _fail("invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                         f"Node ID '#{node_id}'")
        class_type = node["class_type"]
        if not isinstance(class_type, str) or class_type not in object_info:
            return _fail("invalid_prompt", f"Cannot execute because node {class_type} does not exist.",
                         f"Node ID '#{node_id}'")
        if object_info[class_type].get("output_node") is True:
            if partial_execution_targets is None or node_id in partial_execution_targets:
                outputs.append(node_id)
    if not outputs:
        return _fail("prompt_no_outputs", "Prompt has no outputs", "")

    run = _Validator(prompt, object_info, normalise_uploads(known_uploads))
    good: list = []
    failed: list = []
    node_errors: dict = {}
    for out in outputs:
        try:
            valid, reasons, _ = run.node(out)
        except Exception as ex:
            valid, reasons = False, [_error("exception_during_validation", "Exception when validating node",
                                            str(ex), exception_type=_type_name(ex), traceback=[])]
            run.validated[out] = (False, reasons, out)
        if valid is True:
            good.append(out)
            continue
        failed.append((out, reasons))
        for node_id, (ok, node_reasons, _) in run.validated.items():
            if ok is not True and node_reasons:
                if node_id not in node_errors:
                    node_errors[node_id] = {"errors": node_reasons, "dependent_outputs": [],
                                            "class_type": prompt[node_id]["class_type"]}
                node_errors[node_id]["dependent_outputs"].append(out)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in failed for e in errs)
        return _fail("prompt_outputs_failed_validation", "Prompt outputs failed validation", details, node_errors)
    return ValidationResult(True, node_errors, None, good)


def coerce_inputs(prompt: dict, object_info: dict) -> dict:
    """A copy of the prompt with literals converted as ComfyUI does ("8" -> 8 for INT, __value__ unwrapped)."""
    out = copy.deepcopy(prompt)
    for node in out.values():
        if not isinstance(node, dict):
            continue
        info = object_info.get(node.get("class_type")) if isinstance(node.get("class_type"), str) else None
        inputs = node.get("inputs")
        if not isinstance(info, dict) or not isinstance(inputs, dict):
            continue
        for name, val in list(inputs.items()):
            if isinstance(val, list):
                continue
            if isinstance(val, dict) and "__value__" in val:
                val = val["__value__"]
            try:
                inputs[name] = _convert(_input_info(info, name)[0], val)
            except (TypeError, ValueError):
                pass  # left as sent: validation reports it
    return out
