"""The default node set of the fake ComfyUI (input specs as in 0.3.64).

The four classes recorded in ``http_info.json`` (EmptyImage, LoadImage,
SaveImage, ImageScale) are reproduced exactly; the others follow §11.5 of the
API notes and ComfyUI's published node definitions.
"""

from __future__ import annotations

from typing import Dict, Iterable

from .nodedefs import NodeDef, passthrough_def

MAX_RES = 16384
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2",
    "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm",
    "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "gradient_estimation",
    "er_sde", "seeds_2", "seeds_3", "ddim", "uni_pc", "uni_pc_bh2",
]
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta",
              "normal", "linear_quadratic", "kl_optimal"]
SAVE_DESC = "Saves the input images to your ComfyUI output directory."
HIDDEN_PNG = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


def _int(default, lo, hi, step=None, **extra):
    opts = {"default": default, "min": lo, "max": hi}
    if step is not None:
        opts["step"] = step
    opts.update(extra)
    return ["INT", opts]


def _float(default, lo, hi, step, **extra):
    return ["FLOAT", {"default": default, "min": lo, "max": hi, "step": step, **extra}]


def _input_images(ctx):
    return [ctx.input_image_files(), {"image_upload": True}]


def _model_combo(folder, tooltip):
    def spec(ctx):
        return [ctx.model_files(folder), {"tooltip": tooltip}]
    return spec


def _defs() -> Iterable[NodeDef]:
    img = ["IMAGE"]
    yield NodeDef("EmptyImage", required={
        "width": _int(512, 1, MAX_RES, 1), "height": _int(512, 1, MAX_RES, 1),
        "batch_size": _int(1, 1, 4096),
        "color": _int(0, 0, 0xFFFFFF, 1, display="color")}, outputs=["IMAGE"])
    yield NodeDef("LoadImage", display_name="Load Image", required={"image": _input_images},
                  outputs=["IMAGE", "MASK"])
    yield NodeDef("LoadImageMask", display_name="Load Image (as Mask)", category="mask",
                  required={"image": _input_images,
                            "channel": [["alpha", "red", "green", "blue"]]},
                  outputs=["MASK"])
    yield NodeDef("ImageInvert", display_name="Invert Image", required={"image": img},
                  outputs=["IMAGE"])
    yield NodeDef("ImageScale", display_name="Upscale Image", category="image/upscaling",
                  required={"image": img, "upscale_method": [list(UPSCALE_METHODS)],
                            "width": _int(512, 0, MAX_RES, 1), "height": _int(512, 0, MAX_RES, 1),
                            "crop": [["disabled", "center"]]},
                  outputs=["IMAGE"])
    yield NodeDef("ImageScaleBy", display_name="Upscale Image By", category="image/upscaling",
                  required={"image": img, "upscale_method": [list(UPSCALE_METHODS)],
                            "scale_by": _float(1.0, 0.01, 8.0, 0.01)},
                  outputs=["IMAGE"])
    yield NodeDef("ImageBlur", display_name="Image Blur", category="image/postprocessing",
                  python_module="comfy_extras.nodes_post_processing",
                  required={"image": img, "blur_radius": _int(1, 1, 31, 1),
                            "sigma": _float(1.0, 0.1, 10.0, 0.1)},
                  outputs=["IMAGE"])
    pad = _int(0, 0, MAX_RES, 8)
    yield NodeDef("ImagePadForOutpaint", display_name="Pad Image for Outpainting",
                  required={"image": img, "left": pad, "top": pad, "right": pad, "bottom": pad,
                            "feathering": _int(40, 0, MAX_RES, 1)},
                  outputs=["IMAGE", "MASK"])
    yield NodeDef("ImageCrop", display_name="Image Crop", category="image/transform",
                  required={"image": img, "width": _int(512, 1, MAX_RES, 1),
                            "height": _int(512, 1, MAX_RES, 1),
                            "x": _int(0, 0, MAX_RES, 1), "y": _int(0, 0, MAX_RES, 1)},
                  outputs=["IMAGE"])
    yield NodeDef("GetImageSize", display_name="Get Image Size",
                  python_module="comfy_extras.nodes_images",
                  description="Returns width and height of the image, and passes it through unchanged.",
                  required={"image": img}, outputs=["INT", "INT", "INT"],
                  output_names=["width", "height", "batch_size"])
    yield NodeDef("SaveImage", display_name="Save Image", description=SAVE_DESC,
                  required={"images": ["IMAGE", {"tooltip": "The images to save."}],
                            "filename_prefix": ["STRING", {
                                "default": "ComfyUI",
                                "tooltip": "The prefix for the file to save. This may include "
                                           "formatting information such as %date:yyyy-MM-dd% or "
                                           "%Empty Latent Image.width% to include values from nodes."}]},
                  hidden=dict(HIDDEN_PNG), outputs=[], output_node=True)
    yield NodeDef("PreviewImage", display_name="Preview Image", description=SAVE_DESC,
                  required={"images": ["IMAGE", {"tooltip": "The images to save."}]},
                  hidden=dict(HIDDEN_PNG), outputs=[], output_node=True)
    yield NodeDef("SaveImageWebsocket", category="api node/image",
                  python_module="custom_nodes.websocket_image_save",
                  required={"images": img}, outputs=[], output_node=True)
    yield NodeDef("PrimitiveString", display_name="String", category="utils/primitive",
                  python_module="comfy_extras.nodes_primitive",
                  required={"value": ["STRING", {}]}, outputs=["STRING"])
    yield NodeDef("PreviewAny", display_name="Preview Any", category="utils",
                  python_module="comfy_extras.nodes_preview_any",
                  required={"source": ["*", {}]}, outputs=[], output_node=True)
    yield from _model_defs()


def _model_defs() -> Iterable[NodeDef]:
    yield NodeDef("CheckpointLoaderSimple", display_name="Load Checkpoint", category="loaders",
                  description="Loads a diffusion model checkpoint, diffusion models are used to "
                              "denoise latents.",
                  required={"ckpt_name": _model_combo(
                      "checkpoints", "The name of the checkpoint (model) to load.")},
                  outputs=["MODEL", "CLIP", "VAE"],
                  output_tooltips=["The model used for denoising latents.",
                                   "The CLIP model used for encoding text prompts.",
                                   "The VAE model used for encoding and decoding images to and "
                                   "from latent space."])
    strength = _float(1.0, -100.0, 100.0, 0.01)
    yield NodeDef("LoraLoader", display_name="Load LoRA", category="loaders",
                  required={"model": ["MODEL"], "clip": ["CLIP"],
                            "lora_name": _model_combo("loras", "The name of the LoRA."),
                            "strength_model": strength, "strength_clip": strength},
                  outputs=["MODEL", "CLIP"])
    yield NodeDef("VAELoader", display_name="Load VAE", category="loaders",
                  required={"vae_name": lambda ctx: [ctx.model_files("vae")]},
                  outputs=["VAE"])
    yield NodeDef("CLIPTextEncode", display_name="CLIP Text Encode (Prompt)",
                  category="conditioning",
                  required={"text": ["STRING", {"multiline": True, "dynamicPrompts": True}],
                            "clip": ["CLIP"]},
                  outputs=["CONDITIONING"])
    yield NodeDef("EmptyLatentImage", display_name="Empty Latent Image", category="latent",
                  required={"width": _int(512, 16, MAX_RES, 8), "height": _int(512, 16, MAX_RES, 8),
                            "batch_size": _int(1, 1, 4096)},
                  outputs=["LATENT"])
    yield NodeDef("KSampler", category="sampling",
                  description="Uses the provided model, positive and negative conditioning to "
                              "denoise the latent image.",
                  required={"model": ["MODEL"],
                            "seed": _int(0, 0, 0xFFFFFFFFFFFFFFFF, control_after_generate=True),
                            "steps": _int(20, 1, 10000),
                            "cfg": _float(8.0, 0.0, 100.0, 0.1, round=0.01),
                            "sampler_name": [list(SAMPLERS)], "scheduler": [list(SCHEDULERS)],
                            "positive": ["CONDITIONING"], "negative": ["CONDITIONING"],
                            "latent_image": ["LATENT"],
                            "denoise": _float(1.0, 0.0, 1.0, 0.01)},
                  outputs=["LATENT"], output_tooltips=["The denoised latent."])
    yield NodeDef("VAEDecode", display_name="VAE Decode", category="latent",
                  required={"samples": ["LATENT"], "vae": ["VAE"]}, outputs=["IMAGE"])


def build_node_set(extra_nodes=(), missing_nodes=()) -> Dict[str, NodeDef]:
    """Return ``{class_name: NodeDef}`` for the default set, adjusted by extra/missing names."""
    defs = {d.name: d for d in _defs()}
    for name in extra_nodes:
        if name not in defs:
            defs[name] = passthrough_def(name)
    for name in missing_nodes:
        defs.pop(name, None)
    return defs
