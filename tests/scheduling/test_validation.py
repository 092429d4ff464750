"""validate_prompt answers as ComfyUI 0.3.64 (shapes compared with http_prompt_errors.json)."""

import pytest

from gateway.scheduling.validation import coerce_inputs, validate_prompt

from .helpers import CHECKPOINT_FLOW, WORKFLOW_A, WORKFLOW_B, flow, load, object_info

CASES = [c for c in load("http_prompt_errors.json")["cases"] if "body" in c["request"]]


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_matches_recorded_answer(case):
    result = validate_prompt(case["request"]["body"].get("prompt"), object_info())
    expected = case["response"]["body"]
    assert result.status == case["response"]["status"]
    if result.ok:
        assert result.node_errors == expected["node_errors"]
    else:
        assert result.error_body == expected


def test_unpacks_as_status_and_body():
    status, body = validate_prompt(None, object_info())
    assert status == 400 and body["error"]["type"] == "no_prompt"
    status, body = validate_prompt(flow(WORKFLOW_A), object_info())
    assert (status, body) == (200, {"node_errors": {}})


def test_missing_class_type():
    result = validate_prompt({"5": {"inputs": {}}}, object_info())
    assert result.error_body["error"] == {
        "type": "invalid_prompt", "message": "Cannot execute because a node is missing the class_type property.",
        "details": "Node ID '#5'", "extra_info": {}}


def errors_of(prompt, node_id, **kw):
    result = validate_prompt(prompt, object_info(), **kw)
    assert not result.ok
    assert result.error_body["error"]["type"] == "prompt_outputs_failed_validation"
    return result.node_errors[node_id]


def test_min_and_max():
    prompt = flow(WORKFLOW_A)
    prompt["1"]["inputs"]["width"] = 0
    prompt["2"]["inputs"]["blur_radius"] = 40
    result = validate_prompt(prompt, object_info())
    assert result.node_errors["1"]["errors"] == [{
        "type": "value_smaller_than_min", "message": "Value 0 smaller than min of 1", "details": "width",
        "extra_info": {"input_name": "width", "received_value": 0,
                       "input_config": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}]}}]
    assert result.node_errors["2"]["errors"][0]["type"] == "value_bigger_than_max"
    assert result.node_errors["2"]["errors"][0]["message"] == "Value 40 bigger than max of 31"
    assert result.node_errors["1"]["dependent_outputs"] == ["4"]
    assert result.error_body["error"]["details"] == ""


def test_invalid_input_type_and_string_numbers():
    prompt = flow(WORKFLOW_A)
    prompt["1"]["inputs"]["height"] = "tall"
    error = errors_of(prompt, "1")["errors"][0]
    assert error["type"] == "invalid_input_type"
    assert error["message"] == "Failed to convert an input value to a INT value"
    assert error["details"] == "height, tall, invalid literal for int() with base 10: 'tall'"
    assert error["extra_info"]["received_value"] == "tall"
    prompt["1"]["inputs"]["height"] = "64"
    assert validate_prompt(prompt, object_info()).ok
    assert coerce_inputs(prompt, object_info())["1"]["inputs"]["height"] == 64
    assert prompt["1"]["inputs"]["height"] == "64"  # the original is left alone


def test_return_type_mismatch_and_bad_link():
    prompt = flow(WORKFLOW_A)
    prompt["5"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 8, "height": 8}}
    prompt["3"]["inputs"]["image"] = ["5", 0]
    prompt["4"]["inputs"]["images"] = ["3", 0, 1]
    result = validate_prompt(prompt, object_info())
    bad_link = result.node_errors["4"]["errors"][0]
    assert bad_link["type"] == "bad_linked_input" and bad_link["details"] == "images"
    # output 4 failed on its own link, so node 3 was never reached
    assert "3" not in result.node_errors
    prompt["4"]["inputs"]["images"] = ["3", 0]
    mismatch = errors_of(prompt, "3")["errors"][0]
    assert mismatch["type"] == "return_type_mismatch"
    assert mismatch["details"] == "image, received_type(MASK) mismatch input_type(IMAGE)"
    assert mismatch["extra_info"]["linked_node"] == ["5", 0]


def test_value_not_in_list_hides_long_lists():
    prompt = flow(CHECKPOINT_FLOW)
    prompt["1"]["inputs"]["ckpt_name"] = "nope.safetensors"
    prompt["4"]["inputs"]["images"] = ["2", 0]  # keep node 1 on the output's path
    info = object_info()
    info["SaveImage"]["input"]["required"]["images"] = ["*"]
    result = validate_prompt(prompt, info)
    error = result.node_errors["1"]["errors"][0]
    assert error["details"] == "ckpt_name: 'nope.safetensors' not in (list of length 25)"
    assert error["extra_info"] == {"input_name": "ckpt_name", "input_config": None,
                                   "received_value": "nope.safetensors"}


def test_v3_combo():
    prompt = flow(WORKFLOW_A)
    prompt["5"] = {"class_type": "ImageStitchV3", "inputs": {"image1": ["1", 0], "direction": "sideways"}}
    prompt["4"]["inputs"]["images"] = ["5", 0]
    error = errors_of(prompt, "5")["errors"][0]
    assert error["type"] == "value_not_in_list"
    assert error["details"] == "direction: 'sideways' not in ['right', 'down', 'left', 'up']"


def test_load_image_file_check_and_known_uploads():
    result = validate_prompt(flow(WORKFLOW_B), object_info())
    assert not result.ok
    assert result.node_errors["10"]["errors"] == [{
        "type": "custom_validation_failed", "message": "Custom validation failed for node",
        "details": "image - Invalid image file: input.png",
        "extra_info": {"input_name": "image", "input_config": [["example.png"], {"image_upload": True}],
                       "received_value": "input.png"}}]
    assert result.node_errors["10"]["dependent_outputs"] == ["14", "15"]
    assert validate_prompt(flow(WORKFLOW_B), object_info(), known_uploads={"input.png"}).ok
    prompt = flow(WORKFLOW_B)
    prompt["10"]["inputs"]["image"] = "example.png [input]"
    assert validate_prompt(prompt, object_info()).ok


def test_partially_valid_reports_bad_outputs_only():
    prompt = flow(WORKFLOW_B)
    prompt["11"]["inputs"]["crop"] = "middle"
    result = validate_prompt(prompt, object_info(), known_uploads={"input.png"})
    assert result.ok and result.outputs == ["15"]
    assert list(result.node_errors) == ["11"]
    assert result.node_errors["11"]["dependent_outputs"] == ["14"]


def test_details_list_errors_on_output_nodes():
    prompt = flow(WORKFLOW_A)
    del prompt["4"]["inputs"]["images"]
    result = validate_prompt(prompt, object_info())
    assert result.error_body["error"]["details"] == "Required input is missing: images"


def test_link_to_missing_node_is_an_exception_not_a_crash():
    prompt = flow(WORKFLOW_A)
    prompt["4"]["inputs"]["images"] = ["99", 0]
    result = validate_prompt(prompt, object_info())
    assert result.node_errors["4"]["errors"][0]["type"] == "exception_during_validation"


def test_partial_execution_targets():
    result = validate_prompt(flow(WORKFLOW_A), object_info(), partial_execution_targets=["9"])
    assert result.error_body["error"]["type"] == "prompt_no_outputs"


def test_value_wrapper_unwrapped():
    prompt = flow(WORKFLOW_A)
    prompt["1"]["inputs"]["width"] = {"__value__": 32}
    assert validate_prompt(prompt, object_info()).ok
    assert coerce_inputs(prompt, object_info())["1"]["inputs"]["width"] == 32
