"""Ready-made API-format workflows for gateway tests and benchmarks.

Every helper returns a fresh dict (the ``prompt`` value of POST /prompt).
Colours default to a process-unique value so repeated submissions never hit
ComfyUI's cache (§10.4) unless a test asks for it by passing the same colour.
"""

from __future__ import annotations

import itertools
import math
import os
import random
from typing import Optional

_colors = itertools.count(random.Random(os.getpid()).randrange(1, 0x7FFFFF))
PIXEL_UNIT = 512 * 512
MAX_SIDE = 12000


def unique_color() -> int:
    """A colour (packed RGB int) not returned before in this process."""
    return next(_colors) % 0xFFFFFF or 1


def sample_workflow(color: Optional[int] = None, size: int = 64,
                    prefix: str = "gateway_test/generated", height: Optional[int] = None) -> dict:
    """Workflow A of §11.6: EmptyImage -> ImageBlur -> ImageInvert -> SaveImage.

    Duration at speed 1: ``node_seconds * (size*height/512**2 + 3)``.
    """
    color = unique_color() if color is None else color
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": height or size,
                                                     "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 2,
                                                    "sigma": 1.0}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0],
                                                    "filename_prefix": prefix}},
    }


def slow_workflow(seconds_at_speed1: float, node_seconds: float = 0.01,
                  color: Optional[int] = None, prefix: str = "gateway_test/slow") -> dict:
    """EmptyImage -> ImagePadForOutpaint (xN) -> SaveImage lasting about ``seconds_at_speed1``.

    Pass the simulator's ``node_seconds`` if it is not the default 0.01.  The
    time splits evenly between the EmptyImage and the pad node(s), so an
    interrupt sent during node 1 lands when node 2 starts (as in ws_interrupt).
    """
    color = unique_color() if color is None else color
    units = max(seconds_at_speed1 / node_seconds - 1.0, 0.02)
    heavy = max(2, math.ceil(units / (MAX_SIDE * MAX_SIDE / PIXEL_UNIT)))
    side = max(1, int(math.sqrt(units / heavy * PIXEL_UNIT)))
    wf = {"1": {"class_type": "EmptyImage", "inputs": {"width": side, "height": side,
                                                       "batch_size": 1, "color": color}}}
    src = "1"
    for i in range(2, heavy + 1):
        wf[str(i)] = {"class_type": "ImagePadForOutpaint", "inputs": {
            "image": [src, 0], "left": 8, "top": 8, "right": 8, "bottom": 8, "feathering": 40}}
        src = str(i)
    wf[str(heavy + 1)] = {"class_type": "SaveImage", "inputs": {"images": [src, 0],
                                                                "filename_prefix": prefix}}
    return wf


def ksampler_workflow(steps: int = 20, ckpt: str = "sd15.safetensors", seed: Optional[int] = None,
                      width: int = 512, height: int = 512, text: str = "a photo of a cat",
                      prefix: str = "gateway_test/ksampler") -> dict:
    """The classic txt2img graph; needs ``ckpt`` in the simulator's models["checkpoints"].

    KSampler sends ``progress`` value 1..steps; duration ``(steps + 6) * node_seconds``.
    """
    seed = unique_color() if seed is None else seed
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": height,
                                                           "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": seed, "steps": steps, "cfg": 8.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0],
            "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0],
                                                    "filename_prefix": prefix}},
    }


def transform_workflow(image: str = "example.png", prefix: str = "gateway_test/transformed",
                       width: int = 128, height: int = 96) -> dict:
    """Workflow B of §11.7 (LoadImage -> scale/blur/invert -> SaveImage, plus a PreviewImage)."""
    return {
        "10": {"class_type": "LoadImage", "inputs": {"image": image}},
        "11": {"class_type": "ImageScale", "inputs": {"image": ["10", 0],
                                                      "upscale_method": "bilinear",
                                                      "width": width, "height": height,
                                                      "crop": "disabled"}},
        "12": {"class_type": "ImageBlur", "inputs": {"image": ["11", 0], "blur_radius": 3,
                                                     "sigma": 1.5}},
        "13": {"class_type": "ImageInvert", "inputs": {"image": ["12", 0]}},
        "14": {"class_type": "SaveImage", "inputs": {"images": ["13", 0],
                                                     "filename_prefix": prefix}},
        "15": {"class_type": "PreviewImage", "inputs": {"images": ["10", 0]}},
    }


def websocket_image_workflow(color: Optional[int] = None, size: int = 16) -> dict:
    """EmptyImage -> SaveImageWebsocket (binary preview frames, no history outputs)."""
    color = unique_color() if color is None else color
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size,
                                                     "batch_size": 1, "color": color}},
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }
