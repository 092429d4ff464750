"""Output files: which worker holds each file a job produced, and the gateway URLs put into history."""

from __future__ import annotations

import copy
import logging
from collections import OrderedDict
from urllib.parse import urlencode

logger = logging.getLogger(__name__)

INDEX_LIMIT = 50_000  # most recent files remembered in memory; older ones are looked up in the store


def tag_output_prefixes(prompt: dict, worker_id: int) -> dict:
    """The workflow with each filename_prefix made unique to the worker ("x/img" -> "x/img_gw2").

    Every worker counts file names on its own, so two workers both write img_00001_.png; a client
    that downloads with /view?filename= (no prompt_id) could then get the other worker's file. With
    the tag, a name in history says which worker holds it, and the output index is unambiguous.
    """
    tagged = {}
    for node_id, node in prompt.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        prefix = inputs.get("filename_prefix") if isinstance(inputs, dict) else None
        if isinstance(prefix, str):
            node = {**node, "inputs": {**inputs, "filename_prefix": f"{prefix}_gw{worker_id}"}}
        tagged[node_id] = node
    return tagged


def files_in_outputs(outputs: dict) -> list[dict]:
    """Every {filename, subfolder, type} entry in a history 'outputs' dict."""
    found = []
    for node_output in (outputs or {}).values():
        if not isinstance(node_output, dict):
            continue
        for items in node_output.values():
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("filename"), str):
                    found.append({"filename": item["filename"], "subfolder": item.get("subfolder") or "",
                                  "type": item.get("type") or "output"})
    return found


def view_url(base_url: str, item: dict, prompt_id: str | None) -> str:
    """The gateway's /api/view URL for one file entry."""
    query = {"filename": item["filename"], "subfolder": item.get("subfolder") or "", "type": item.get("type")
             or "output"}
    if prompt_id:
        query["prompt_id"] = prompt_id
    return f"{base_url}/api/view?{urlencode(query)}"


def with_urls(entry: dict, prompt_id: str, base_url: str) -> dict:
    """A copy of a history entry whose file entries each carry a 'url' to the gateway."""
    entry = copy.deepcopy(entry)
    for node_output in (entry.get("outputs") or {}).values():
        if not isinstance(node_output, dict):
            continue
        for items in node_output.values():
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, dict) and isinstance(item.get("filename"), str):
                        item["url"] = view_url(base_url, item, prompt_id)
    return entry


class OutputIndex:
    """Remembers where output files are: memory for recent files, the store for the rest."""

    def __init__(self, store):
        self.store = store
        self._where: OrderedDict[tuple[str, str, str], tuple[int | None, str]] = OrderedDict()

    async def record(self, prompt_id: str, worker_id: int | None, outputs: dict) -> None:
        """Note the files of a finished job."""
        files = files_in_outputs(outputs)
        if not files:
            return
        for item in files:
            key = (item["type"], item["subfolder"], item["filename"])
            self._where[key] = (worker_id, prompt_id)
            self._where.move_to_end(key)
        while len(self._where) > INDEX_LIMIT:
            self._where.popitem(last=False)
        await self.store.add_outputs(prompt_id, worker_id, files)

    def remember(self, filename: str, subfolder: str, file_type: str, worker_id: int) -> None:
        """Note (in memory) where a file no job of the gateway produced was found by asking the workers."""
        key = (file_type, subfolder, filename)
        self._where[key] = (worker_id, None)
        self._where.move_to_end(key)
        while len(self._where) > INDEX_LIMIT:
            self._where.popitem(last=False)

    def forget(self, filename: str, subfolder: str, file_type: str) -> None:
        """Drop what memory says about a file (its worker no longer has it)."""
        self._where.pop((file_type, subfolder, filename), None)

    async def locate(self, filename: str, subfolder: str, file_type: str) -> tuple[int | None, str | None] | None:
        """(worker_id, prompt_id) of the job that produced a file, if the gateway knows it."""
        hit = self._where.get((file_type, subfolder, filename))
        if hit:
            return hit
        row = await self.store.find_output(filename, subfolder, file_type)
        return (row.get("worker_id"), row.get("prompt_id")) if row else None
