"""Where the gateway puts uploads on a worker: its own namespace, never over the worker's own files.

A client's ``example.png`` goes to the worker as ``comfyui-gateway/<sha256 prefix>/example.png`` in
its input folder, and the loader values of the job are rewritten to that path just before it is
sent. The client keeps its own names everywhere it looks (answers, history, /view), and a worker's
own ``input/example.png`` is never replaced. The content hash in the path means two uploads that
share a name never meet either.
"""

from __future__ import annotations

from typing import Callable

NAMESPACE = "comfyui-gateway"
ANNOTATIONS = (" [input]", " [output]", " [temp]")


def worker_subfolder(sha: str) -> str:
    """The subfolder of the worker's input folder that holds an upload with this content hash."""
    return f"{NAMESPACE}/{sha[:16]}"


def worker_value(name: str, sha: str) -> str:
    """The loader value that names an upload on the worker."""
    return f"{worker_subfolder(sha)}/{name}"


def rewrite_inputs(prompt: dict, sha_of: Callable[[str], tuple[str, str] | None]) -> dict:
    """The prompt with every input that names an upload pointing at the upload's place on the worker.

    sha_of(value) gives (name, sha) for a value naming an upload, else None. Nodes that change are
    copied; the job's own prompt is never modified.
    """
    out = prompt
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue
        changed = None
        for key, value in inputs.items():
            if not isinstance(value, str):
                continue
            found = sha_of(value)
            if found is None:
                continue
            if changed is None:
                changed = dict(inputs)
            changed[key] = worker_value(*found)
        if changed is not None:
            if out is prompt:
                out = dict(prompt)
            out[node_id] = {**node, "inputs": changed}
    return out
