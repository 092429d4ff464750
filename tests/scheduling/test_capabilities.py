"""Capabilities from /object_info, workflow requirements, and what a worker lacks."""

from gateway.scheduling.capabilities import Capabilities, Missing, is_file_like, requirements_of

from .helpers import CHECKPOINT_FLOW, WORKFLOW_A, WORKFLOW_B, flow, object_info


def caps(drop=(), **combo_overrides):
    info = object_info()
    for name in drop:
        info.pop(name)
    for key, values in combo_overrides.items():
        class_type, input_name = key.split("__")
        info[class_type]["input"]["required"][input_name][0] = values
    return Capabilities.from_object_info(info)


def test_from_object_info_reads_v1_and_v3_combos():
    c = caps()
    assert "EmptyImage" in c.node_types and "SaveImage" in c.output_nodes
    assert c.combos[("ImageScale", "upscale_method")] == {"nearest-exact", "bilinear", "area", "bicubic", "lanczos"}
    assert c.combos[("LoadImage", "image")] == {"example.png"}
    assert c.combos[("ImageStitchV3", "direction")] == {"right", "down", "left", "up"}
    assert ("EmptyImage", "width") not in c.combos  # INT is not a combo


def test_requirements_skip_links_and_uploads():
    req = requirements_of(flow(WORKFLOW_B), known_uploads={"input.png"})
    assert req.class_types == {"LoadImage", "ImageScale", "ImageBlur", "ImageInvert", "SaveImage", "PreviewImage"}
    assert all(not isinstance(v[3], list) for v in req.values)
    assert ("10", "LoadImage", "image", "input.png") not in req.values
    assert ("11", "ImageScale", "upscale_method", "bilinear") in req.values


def test_upload_names_match_with_subfolder_and_annotation():
    prompt = flow(WORKFLOW_B)
    prompt["10"]["inputs"]["image"] = "sub/input.png [input]"
    assert caps().missing(requirements_of(prompt, {"sub/input.png"})).empty
    assert not caps().missing(requirements_of(prompt, {"other.png"})).empty


def test_workflow_a_runs_everywhere_with_the_nodes():
    assert caps().missing(requirements_of(flow(WORKFLOW_A))).empty


def test_missing_node_type():
    missing = caps(drop=["ImageBlur"]).missing(requirements_of(flow(WORKFLOW_A)))
    assert missing.node_types == ("ImageBlur",) and not missing.empty
    assert missing.describe() == "missing node type: ImageBlur"


def test_missing_checkpoint_and_lora():
    c = caps(CheckpointLoaderSimple__ckpt_name=["other.safetensors"], LoraLoaderModelOnly__lora_name=["style.safetensors"])
    missing = c.missing(requirements_of(flow(CHECKPOINT_FLOW)))
    assert missing.files == (("1", "CheckpointLoaderSimple", "ckpt_name", "model_03.safetensors"),
                             ("2", "LoraLoaderModelOnly", "lora_name", "detail.safetensors"))
    text = missing.describe()
    assert text.startswith("missing files: ckpt_name 'model_03.safetensors' (CheckpointLoaderSimple node 1)")
    assert "lora_name 'detail.safetensors'" in text
    assert caps().missing(requirements_of(flow(CHECKPOINT_FLOW))).empty


def test_missing_image_not_uploaded_and_bad_choice():
    prompt = flow(WORKFLOW_B)
    prompt["11"]["inputs"]["upscale_method"] = "bogus"
    missing = caps().missing(requirements_of(prompt))
    assert [f[2] for f in missing.files] == ["image", "upscale_method"]
    assert missing.describe() == ("missing file: image 'input.png' (LoadImage node 10); "
                                  "unsupported value: upscale_method 'bogus' (ImageScale node 11)")


def test_output_annotated_files_are_not_requirements():
    prompt = flow(WORKFLOW_B)
    prompt["10"]["inputs"]["image"] = "result_00001_.png [output]"
    assert caps().missing(requirements_of(prompt)).files == ()


def test_file_like_rule():
    assert is_file_like("ckpt_name", "x")
    assert is_file_like("whatever", "model.GGUF")
    assert is_file_like("image", "a")
    assert not is_file_like("upscale_method", "bilinear")


def test_missing_empty_and_reasons():
    assert Missing().empty and Missing().describe() == "nothing missing"
    m = Missing(reasons=("worker is offline",))
    assert not m.empty and m.describe() == "worker is offline"
