"""Where things live: the per-user data folder, bundled resources, and the desktop defaults of the executable."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Mapping

import platformdirs
import platformdirs.macos
import platformdirs.unix
import platformdirs.windows
import yaml
from dotenv import dotenv_values

from ..config import SETTINGS_BY_NAME, Settings

APP_NAME = "comfyui-gateway"
REPO_ROOT = Path(__file__).resolve().parents[2]
PLATFORM_DIRS = {"win32": platformdirs.windows.Windows, "darwin": platformdirs.macos.MacOS}


def is_frozen() -> bool:
    """True inside the PyInstaller executable."""
    return bool(getattr(sys, "frozen", False))


def user_data_dir(platform: str | None = None) -> Path:
    """The per-user data folder (platformdirs; ``platform`` picks another system's rules, for tests)."""
    dirs = PLATFORM_DIRS.get(platform, platformdirs.unix.Unix) if platform else platformdirs.PlatformDirs
    return Path(dirs(APP_NAME, appauthor=False, roaming=False).user_data_dir)


def resource_dir() -> Path:
    """The folder holding bundled files: the unpacked executable, or the repository when run from source."""
    return Path(getattr(sys, "_MEIPASS", REPO_ROOT))


def icons_dir() -> Path:
    """Tray icon PNGs: icons/ in the executable, packaging/icons/ in the repository."""
    frozen = resource_dir() / "icons"
    return frozen if frozen.is_dir() else REPO_ROOT / "packaging" / "icons"


def seed_example_config(data_dir: Path, source: Path | None = None) -> Path | None:
    """Put gateway.yaml.example into the data folder (once), so "Open data folder" shows what can be set."""
    source = source or resource_dir() / "gateway.yaml.example"
    target = Path(data_dir) / "gateway.yaml.example"
    if target.exists() or not source.is_file():
        return None
    try:
        shutil.copyfile(source, target)
    except OSError:
        return None
    return target


def display_available(platform: str | None = None, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a tray icon can be shown: always on Windows and macOS, an X or Wayland display elsewhere."""
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    if platform.startswith("win") or platform == "darwin":
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def explicit_settings(settings: Settings, cli: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                      env_file: str | None = ".env") -> set[str]:
    """Names of the settings some source set (CLI, environment, .env, gateway.yaml), as opposed to defaults."""
    environ = os.environ if environ is None else environ
    names = {name for name, value in cli.items() if value is not None}
    names |= {s.name for s in SETTINGS_BY_NAME.values() if environ.get(s.env) is not None}
    if env_file and Path(env_file).is_file():
        dotenv = dotenv_values(env_file)
        names |= {s.name for s in SETTINGS_BY_NAME.values() if dotenv.get(s.env) is not None}
    if settings.config_file:
        data = yaml.safe_load(Path(settings.config_file).read_text(encoding="utf-8")) or {}
        keys = {str(key).lower() for key in data}
        names |= {s.name for s in SETTINGS_BY_NAME.values() if s.name in keys or s.env.lower() in keys}
    return names


def desktop_config_file(config_file: str | None, cli_data_dir: str | None,
                        environ: Mapping[str, str] | None = None) -> str | None:
    """The gateway.yaml to read: --config, else (frozen) the one in the data folder when it exists."""
    if config_file or not is_frozen():
        return config_file
    environ = os.environ if environ is None else environ
    folder = Path(cli_data_dir or environ.get("GATEWAY_DATA_DIR") or user_data_dir()).expanduser()
    candidate = folder / "gateway.yaml"
    return str(candidate) if candidate.is_file() else None


def desktop_defaults(settings: Settings, cli: Mapping[str, Any], frozen: bool | None = None,
                     environ: Mapping[str, str] | None = None, env_file: str | None = ".env") -> Settings:
    """The executable's defaults: data in the per-user folder, tray icon and browser on (a double-click).

    Only settings that no source set explicitly change; from source (./run.sh) nothing changes. Without a
    display the tray falls back to headless (gateway.desktop).
    """
    if not (is_frozen() if frozen is None else frozen):
        return settings
    explicit = explicit_settings(settings, cli, environ, env_file)
    changes: dict[str, Any] = {}
    if "data_dir" not in explicit:
        changes["data_dir"] = str(user_data_dir())
    if "tray" not in explicit:
        changes["tray"] = True
    if "open_browser" not in explicit:
        changes["open_browser"] = changes.get("tray", settings.tray)
    return dataclasses.replace(settings, **changes)


def admin_url(host: str, port: int) -> str:
    """The admin page's URL for a browser on this machine (wildcard addresses become loopback)."""
    if host in ("", "0.0.0.0", "::", "*"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/"
