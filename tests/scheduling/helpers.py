"""Shared fixtures data for the unit tests (copied from the ComfyUI 0.3.64 traces)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def load(name: str):
    """A JSON file from tests/unit/data."""
    return json.loads((DATA / name).read_text())


def object_info() -> dict:
    """A worker's /object_info: the traced classes plus a few hand-written ones (a fresh copy)."""
    return copy.deepcopy(load("object_info.json"))


WORKFLOW_A = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 16744448}},
    "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 2, "sigma": 1.0}},
    "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "gateway_test/generated"}},
}

WORKFLOW_B = {
    "10": {"class_type": "LoadImage", "inputs": {"image": "input.png"}},
    "11": {"class_type": "ImageScale", "inputs": {"image": ["10", 0], "upscale_method": "bilinear", "width": 128,
                                                  "height": 96, "crop": "disabled"}},
    "12": {"class_type": "ImageBlur", "inputs": {"image": ["11", 0], "blur_radius": 3, "sigma": 1.5}},
    "13": {"class_type": "ImageInvert", "inputs": {"image": ["12", 0]}},
    "14": {"class_type": "SaveImage", "inputs": {"images": ["13", 0], "filename_prefix": "gateway_test/transformed"}},
    "15": {"class_type": "PreviewImage", "inputs": {"images": ["10", 0]}},
}

CHECKPOINT_FLOW = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "model_03.safetensors"}},
    "2": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": "detail.safetensors",
                                                          "strength_model": 0.8}},
    "3": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "x"}},
}


def flow(base: dict) -> dict:
    """A deep copy of one of the workflows above."""
    return copy.deepcopy(base)
