"""Per-user data folder, desktop defaults of the executable, admin URL."""

from __future__ import annotations

import sys
from pathlib import Path

import platformdirs.windows

from gateway.config import load_settings
from gateway.desktop import paths


def settings_for(tmp_path: Path, cli: dict | None = None, environ: dict | None = None, yaml_text: str | None = None):
    config = None
    if yaml_text is not None:
        config = tmp_path / "gateway.yaml"
        config.write_text(yaml_text)
    return load_settings(str(config) if config else None, cli or {}, environ=environ or {}, env_file=None)


def test_user_data_dir_per_platform(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("LOCALAPPDATA", r"C:\Users\ann\AppData\Local")
    # off Windows, platformdirs' Windows rules read the folder from the environment, as Windows' own API would
    monkeypatch.setattr(platformdirs.windows, "get_win_folder", platformdirs.windows.get_win_folder_from_env_vars)
    assert paths.user_data_dir("win32") == Path(r"C:\Users\ann\AppData\Local") / "comfyui-gateway"
    assert paths.user_data_dir("darwin") == home / "Library" / "Application Support" / "comfyui-gateway"
    assert paths.user_data_dir("linux") == home / ".local" / "share" / "comfyui-gateway"
    monkeypatch.setenv("XDG_DATA_HOME", "/srv/xdg")
    assert paths.user_data_dir("linux") == Path("/srv/xdg/comfyui-gateway")
    # a relative XDG_DATA_HOME is invalid per the spec and ignored
    monkeypatch.setenv("XDG_DATA_HOME", "rel")
    assert paths.user_data_dir("linux") == home / ".local" / "share" / "comfyui-gateway"
    assert paths.user_data_dir() == paths.user_data_dir(sys.platform if sys.platform in ("win32", "darwin")
                                                        else "linux")


def test_display_available():
    assert paths.display_available("win32", {})
    assert paths.display_available("darwin", {})
    assert not paths.display_available("linux", {})
    assert paths.display_available("linux", {"DISPLAY": ":0"})
    assert paths.display_available("linux", {"WAYLAND_DISPLAY": "wayland-0"})


def test_source_run_keeps_its_settings(tmp_path):
    settings = settings_for(tmp_path)
    assert paths.desktop_defaults(settings, {}, frozen=False, environ={}) is settings
    assert settings.data_dir == "./data" and not settings.tray


def test_frozen_defaults_use_the_user_folder_and_the_tray(tmp_path, monkeypatch):
    environ = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "LOCALAPPDATA": str(tmp_path / "xdg")}
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = paths.desktop_defaults(settings_for(tmp_path), {}, frozen=True, environ=environ, env_file=None)
    assert settings.data_path == paths.user_data_dir().resolve() == (tmp_path / "xdg" / "comfyui-gateway").resolve()
    assert settings.tray and settings.open_browser


def test_frozen_defaults_respect_every_explicit_source(tmp_path):
    environ = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    cli = {"data_dir": str(tmp_path / "mine"), "tray": False, "open_browser": None}
    settings = paths.desktop_defaults(settings_for(tmp_path, cli), cli, frozen=True, environ=environ, env_file=None)
    assert settings.data_path == (tmp_path / "mine").resolve()
    assert not settings.tray and not settings.open_browser  # --no-tray: a server, no browser either

    env = {"GATEWAY_DATA_DIR": str(tmp_path / "env"), "GATEWAY_TRAY": "0", **environ}
    settings = paths.desktop_defaults(settings_for(tmp_path, environ=env), {}, frozen=True, environ=env,
                                      env_file=None)
    assert settings.data_path == (tmp_path / "env").resolve() and not settings.tray

    settings = settings_for(tmp_path, yaml_text="data_dir: ./from-yaml\ntray: false\nopen_browser: true\n")
    settings = paths.desktop_defaults(settings, {}, frozen=True, environ=environ, env_file=None)
    assert settings.data_dir == "./from-yaml" and not settings.tray and settings.open_browser


def test_frozen_config_file_lives_in_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "is_frozen", lambda: True)
    folder = tmp_path / "data"
    folder.mkdir()
    assert paths.desktop_config_file(None, str(folder), environ={}) is None
    (folder / "gateway.yaml").write_text("port: 9000\n")
    assert paths.desktop_config_file(None, str(folder), environ={}) == str(folder / "gateway.yaml")
    assert paths.desktop_config_file(None, None, environ={"GATEWAY_DATA_DIR": str(folder)}) == \
        str(folder / "gateway.yaml")
    assert paths.desktop_config_file("other.yaml", str(folder), environ={}) == "other.yaml"
    monkeypatch.setattr(paths, "is_frozen", lambda: False)
    assert paths.desktop_config_file(None, str(folder), environ={}) is None


def test_admin_url():
    assert paths.admin_url("127.0.0.1", 8000) == "http://127.0.0.1:8000/"
    assert paths.admin_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert paths.admin_url("::1", 8000) == "http://[::1]:8000/"


def test_icons_are_found_from_source():
    folder = paths.icons_dir()
    assert {p.name for p in folder.glob("*.png")} >= {"running.png", "paused.png", "offline.png", "app.png"}


def test_example_config_is_seeded_once(tmp_path):
    source = tmp_path / "gateway.yaml.example"
    source.write_text("# port: 8000\n")
    data = tmp_path / "data"
    data.mkdir()
    assert paths.seed_example_config(data, source) == data / "gateway.yaml.example"
    (data / "gateway.yaml.example").write_text("# edited\n")
    assert paths.seed_example_config(data, source) is None
    assert (data / "gateway.yaml.example").read_text() == "# edited\n"
    assert paths.seed_example_config(data, tmp_path / "missing") is None
