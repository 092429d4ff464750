"""Static prompt validation with ComfyUI 0.3.64's error shapes (§3.3).

``validate_prompt`` returns ``(ok, error, outputs_to_execute, node_errors)``
exactly like ``execution.validate_prompt``; it also coerces literal input
values in place ("8" -> 8 for INT), which is what ends up in queue items and
history.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

from .nodedefs import input_opts, input_type

log = logging.getLogger(__name__)

LINKLESS_TYPES = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
FILE_CHECKED = {"LoadImage": "image", "LoadImageMask": "image"}


def _err(type_, message, details="", extra_info=None):
    return {"type": type_, "message": message, "details": details, "extra_info": extra_info or {}}


def _types_compatible(received, wanted) -> bool:
    if isinstance(wanted, list):  # combo fed by a link: accepted at validation time
        return True
    if received == "*" or wanted == "*":
        return True
    return bool(set(str(received).split(",")) & set(str(wanted).split(",")))


class _Validator:
    """Recursive, memoised validation of the nodes an output depends on."""

    def __init__(self, ctx, nodes, prompt):
        self.ctx = ctx
        self.nodes = nodes
        self.prompt = prompt
        self.validated: Dict[str, Tuple[bool, List[dict], str]] = {}

    def validate(self, unique_id: str) -> Tuple[bool, List[dict], str]:
        if unique_id in self.validated:
            return self.validated[unique_id]
        node = self.prompt[unique_id]
        class_type = node["class_type"]
        ndef = self.nodes[class_type]
        inputs = node.setdefault("inputs", {})
        errors: List[dict] = []
        valid = True
        for name in ndef.required:
            if name not in inputs:
                errors.append(_err("required_input_missing", "Required input is missing", name,
                                   {"input_name": name}))
                valid = False
        for name in list(ndef.required) + list(ndef.optional):
            if name not in inputs:
                continue
            spec = ndef.input_spec(self.ctx, name)
            ok = self._check_input(unique_id, class_type, name, spec, inputs, errors)
            valid = valid and ok
        result = (valid, errors, unique_id)
        self.validated[unique_id] = result
        return result

    def _check_input(self, unique_id, class_type, name, spec, inputs, errors) -> bool:
        val = inputs[name]
        wanted = input_type(spec)
        if isinstance(val, list):
            return self._check_link(name, spec, val, errors)
        if isinstance(val, dict) and "__value__" in val:
            val = val["__value__"]
        if isinstance(wanted, str) and wanted in LINKLESS_TYPES:
            try:
                val = LINKLESS_TYPES[wanted](val)
                inputs[name] = val
            except Exception as ex:  # noqa: BLE001 - mirror ComfyUI's broad catch
                errors.append(_err(
                    "invalid_input_type", f"Failed to convert an input value to a {wanted} value",
                    f"{name}, {val}, {ex}",
                    {"input_name": name, "input_config": spec, "received_value": val,
                     "exception_message": str(ex)}))
                return False
            opts = input_opts(spec)
            if wanted in ("INT", "FLOAT"):
                if "min" in opts and val < opts["min"]:
                    errors.append(_err("value_smaller_than_min",
                                       f"Value {val} smaller than min of {opts['min']}", name,
                                       {"input_name": name, "input_config": spec,
                                        "received_value": val}))
                    return False
                if "max" in opts and val > opts["max"]:
                    errors.append(_err("value_bigger_than_max",
                                       f"Value {val} bigger than max of {opts['max']}", name,
                                       {"input_name": name, "input_config": spec,
                                        "received_value": val}))
                    return False
            return True
        if FILE_CHECKED.get(class_type) == name:
            if not self.ctx.input_file_exists(val):
                errors.append(_err("custom_validation_failed", "Custom validation failed for node",
                                   f"{name} - Invalid image file: {val}",
                                   {"input_name": name, "input_config": spec,
                                    "received_value": val}))
                return False
            return True
        if isinstance(wanted, list):
            if val not in wanted:
                if len(wanted) > 20:
                    list_info = f"(list of length {len(wanted)})"
                    config = None
                else:
                    list_info = str(wanted)
                    config = [wanted, input_opts(spec)]
                errors.append(_err("value_not_in_list", "Value not in list",
                                   f"{name}: '{val}' not in {list_info}",
                                   {"input_name": name, "input_config": config,
                                    "received_value": val}))
                return False
        return True

    def _check_link(self, name, spec, val, errors) -> bool:
        if len(val) != 2:
            errors.append(_err("bad_linked_input",
                               "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                               name, {"input_name": name, "input_config": spec,
                                      "received_value": val}))
            return False
        src_id, slot = str(val[0]), val[1]
        try:
            src = self.prompt[src_id]
            received = self.nodes[src["class_type"]].outputs[slot]
        except (KeyError, IndexError, TypeError) as ex:
            errors.append(_err("exception_during_inner_validation",
                               "Exception when validating inner node", str(ex),
                               {"input_name": name, "input_config": spec,
                                "exception_message": str(ex),
                                "exception_type": type(ex).__name__, "traceback": [],
                                "linked_node": val}))
            return False
        wanted = input_type(spec)
        if not _types_compatible(received, wanted):
            errors.append(_err("return_type_mismatch", "Return type mismatch between linked nodes",
                               f"{name}, received_type({received}) mismatch input_type({wanted})",
                               {"input_name": name, "input_config": spec,
                                "received_type": received, "linked_node": val}))
            return False
        ok, _, _ = self.validate(src_id)
        return ok


def validate_prompt(ctx, nodes, prompt, partial_targets=None
                    ) -> Tuple[bool, Optional[dict], List[str], Dict[str, Any]]:
    """Validate an API-format prompt against ``nodes`` (dict name -> NodeDef)."""
    if not isinstance(prompt, dict):
        return False, _err("invalid_prompt", "Cannot execute because the prompt is not an object.",
                           ""), [], {}
    outputs = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return False, _err("invalid_prompt",
                               "Cannot execute because a node is missing the class_type property.",
                               f"Node ID '#{node_id}'"), [], {}
        class_type = node["class_type"]
        if class_type not in nodes:
            return False, _err("invalid_prompt",
                               f"Cannot execute because node {class_type} does not exist.",
                               f"Node ID '#{node_id}'"), [], {}
        if nodes[class_type].output_node:
            if partial_targets is None or node_id in partial_targets:
                outputs.append(node_id)
    if not outputs:
        return False, _err("prompt_no_outputs", "Prompt has no outputs"), [], {}

    validator = _Validator(ctx, nodes, prompt)
    good: List[str] = []
    failed: List[Tuple[str, List[dict]]] = []
    node_errors: Dict[str, Any] = {}
    for out in outputs:
        try:
            ok, reasons, _ = validator.validate(out)
        except Exception as ex:  # noqa: BLE001
            log.exception("validation crashed for output %s", out)
            ok, reasons = False, [_err("exception_during_validation",
                                       "Exception when validating node", str(ex))]
            validator.validated[out] = (False, reasons, out)
        if ok:
            good.append(out)
            continue
        failed.append((out, reasons))
        for node_id, (valid, node_reasons, _) in validator.validated.items():
            if not valid and node_reasons:
                entry = node_errors.setdefault(node_id, {
                    "errors": node_reasons, "dependent_outputs": [],
                    "class_type": prompt[node_id]["class_type"]})
                entry["dependent_outputs"].append(out)
    if not good:
        lines = [f"{r['message']}: {r['details']}" for _, reasons in failed for r in reasons]
        return False, _err("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                           "\n".join(lines)), [], node_errors
    return True, None, good, node_errors
