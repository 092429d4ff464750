"""comfyui-gateway: one process in front of many ComfyUI servers that looks like one bigger ComfyUI."""

__version__ = "0.1.0"
