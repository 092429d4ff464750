"""Every error type the gateway can send has a name in English and Chinese on the admin page.

The types are found in the gateway's source (error classes, error dicts, ComfyUI-shaped 400s, failed
jobs), so a new type without a Chinese name fails here instead of showing up in English on the page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where error types are written: `type = "x"` (error classes), `"type": "x"` (error dicts), `type="x"`,
# comfy_400("x", ...), fail_queued(job, "x", ...).
PATTERNS = [re.compile(p) for p in (r'\btype = "([a-z_]+)"', r'"type": "([a-z_]+)"', r'\btype="([a-z_]+)"',
                                     r'comfy_400\(\s*"([a-z_]+)"', r'fail_queued\(\s*\w+, "([a-z_]+)"')]
# The same spellings used for things that are not errors: JSON schema types, ComfyUI event and file kinds.
NOT_ERRORS = {"string", "object", "boolean", "number", "integer", "array", "null", "directory", "file", "input",
              "executing", "feature_flags", "status", "execution_start", "execution_success"}


def gateway_error_types() -> set[str]:
    found = set()
    for path in (ROOT / "gateway").rglob("*.py"):
        if path.name == "openapi.py":
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in PATTERNS:
            found.update(pattern.findall(text))
    return found - NOT_ERRORS


def page_strings(name: str) -> dict:
    """The EN or ZH table of ui/strings.js (plain JSON-like object literals with quoted values)."""
    text = (ROOT / "ui" / "strings.js").read_text(encoding="utf-8")
    body = text.split(f"export const {name} = {{", 1)[1].split("\n};", 1)[0]
    pairs = re.findall(r'^\s*("?[\w.]+"?):\s*("(?:[^"\\]|\\.)*"),?\s*$', body, re.M)
    return {key.strip('"'): json.loads(value) for key, value in pairs}


def test_the_scan_finds_the_known_types():
    types = gateway_error_types()
    assert {"bad_request", "not_found", "validation", "worker_lost", "queue_timeout", "invalid_prompt",
            "cancelled", "execution_error"} <= types, types


def test_every_error_type_has_english_and_chinese_names():
    types = gateway_error_types()
    en, zh = page_strings("EN"), page_strings("ZH")
    missing_en = sorted(t for t in types if f"errtype.{t}" not in en)
    missing_zh = sorted(t for t in types if f"errtype.{t}" not in zh)
    assert not missing_en, f"no English name in ui/strings.js for error types {missing_en}"
    assert not missing_zh, f"no Chinese name in ui/strings.js for error types {missing_zh}"
    assert all(re.search(r"[\u4e00-\u9fff]|HTTP|JSON", zh[f"errtype.{t}"]) for t in types)


def test_every_english_text_has_a_chinese_one():
    en, zh = page_strings("EN"), page_strings("ZH")
    assert len(en) > 250
    assert sorted(set(en) - set(zh)) == []
