"""The documentation keeps up with the code: every setting is documented and the example config loads."""

from pathlib import Path

from gateway.config import SETTINGS, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_in_the_docs_and_the_example():
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = (ROOT / "gateway.yaml.example").read_text(encoding="utf-8")
    missing = [s.name for s in SETTINGS if s.env not in configuration or s.name not in example]
    assert not missing, f"document these settings: {missing}"


def test_the_example_config_loads(tmp_path):
    settings = load_settings(str(ROOT / "gateway.yaml.example"), {}, environ={}, env_file=None)
    assert settings.port == 8000


def test_every_gateway_route_is_in_the_api_docs():
    from gateway.openapi import openapi_document
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    paths = openapi_document("test")["paths"]
    missing = [path for path in paths if path.replace("/api", "", 1).split("{")[0].rstrip("/") not in api]
    assert not missing, f"document these routes in docs/api.md: {missing}"
