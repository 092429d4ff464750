"""What the editor reads about the workers' custom nodes, merged over every online worker.

Translations (/i18n), custom node workflow templates (/workflow_templates), the model browser
(/experiment/models) and blueprint subgraphs (/global_subgraphs) describe what is installed on the
workers, so they come from the workers: the union over the online ones, a worker without the route
(older ComfyUI answers 404) simply adding nothing. Single items (a model's metadata, a subgraph) come
from the first worker that has them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from ..errors import ComfyError, GatewayError

logger = logging.getLogger(__name__)

MAX_ITEM_BYTES = 16 * 1024 * 1024  # a single relayed item (metadata, preview image, subgraph)


def deep_merge(target: dict, extra: dict) -> dict:
    """Merge extra into target; nested objects are merged, other values replaced."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = value
    return target


class ClusterViews:
    """Union views over the online workers."""

    def __init__(self, registry):
        self.registry = registry

    def _online(self) -> list:
        return sorted((w for w in self.registry.all() if w.status == "online"), key=lambda w: w.id)

    async def _gather(self, path: str, kind: type) -> list:
        results = await asyncio.gather(*(w.client.get_json(path) for w in self._online()), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, GatewayError):
                raise result
        return [r for r in results if isinstance(r, kind)]

    async def i18n(self) -> dict:
        """Every worker's custom node translations, merged."""
        merged: dict = {}
        for answer in await self._gather("/i18n", dict):
            deep_merge(merged, answer)
        return merged

    async def workflow_templates(self) -> dict:
        """{custom node pack: [template names]} over every worker."""
        merged: dict[str, list] = {}
        for answer in await self._gather("/workflow_templates", dict):
            for pack, names in answer.items():
                if isinstance(names, list):
                    known = merged.setdefault(pack, [])
                    known.extend(n for n in names if n not in known)
        return merged

    async def extensions(self) -> list:
        """The frontend extension files of every worker (custom node packs may differ between workers)."""
        merged: list = []
        for answer in await self._gather("/extensions", list):
            merged.extend(item for item in answer if isinstance(item, str) and item not in merged)
        return merged

    async def global_subgraphs(self) -> dict:
        """Blueprint subgraphs of every worker ({} from workers that have none or no such route)."""
        merged: dict = {}
        for answer in await self._gather("/global_subgraphs", dict):
            for key, value in answer.items():
                merged.setdefault(key, value)
        return merged

    async def model_folders(self) -> list:
        """/experiment/models: each model folder once, with the paths the workers report."""
        merged: dict[str, dict] = {}
        for answer in await self._gather("/experiment/models", list):
            for folder in answer:
                if not isinstance(folder, dict) or not isinstance(folder.get("name"), str):
                    continue
                entry = merged.setdefault(folder["name"], {"name": folder["name"], "folders": []})
                for path in folder.get("folders") or []:
                    if path not in entry["folders"]:
                        entry["folders"].append(path)
        return list(merged.values())

    async def model_files(self, folder: str) -> list:
        """/experiment/models/{folder}: each file name once; ComfyError 404 when no worker has the folder."""
        answers = await self._gather("/experiment/models/" + quote(folder, safe=""), list)
        if not answers:
            raise ComfyError(404, b"")
        seen: dict[str, Any] = {}
        for answer in answers:
            for item in answer:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    seen.setdefault(item["name"], item)
        return list(seen.values())

    async def first_answer(self, path: str, query: dict | None = None) -> tuple[bytes, str]:
        """(body, content type) of the first online worker answering path with 200; ComfyError 404 else."""
        for worker in self._online():
            try:
                response = await worker.client.request("GET", path, query=query)
            except GatewayError as exc:
                logger.info("GET %s on %s failed: %s", path, worker.name, exc.message)
                continue
            if response.status == 200 and len(response.body) <= MAX_ITEM_BYTES:
                return response.body, response.headers.get("Content-Type", "application/octet-stream")
        raise ComfyError(404, b"")
