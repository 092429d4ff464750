"""CLI: python -m gateway [--config FILE] [--host H] [--port P] [--data-dir DIR] [--tray|--no-tray] [--open-browser]."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Callable

from . import __version__
from .app import Gateway
from .config import ConfigError, load_settings
from .desktop.paths import admin_url, desktop_config_file, desktop_defaults, is_frozen, seed_example_config
from .desktop.single_instance import InstanceLock
from .logging_setup import setup_logging

logger = logging.getLogger("gateway")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description="ComfyUI load-balancing gateway")
    parser.add_argument("--config", help="YAML settings file (default: ./gateway.yaml if present)")
    parser.add_argument("--host", help="address to listen on (GATEWAY_HOST)")
    parser.add_argument("--port", help="port to listen on (GATEWAY_PORT)")
    parser.add_argument("--data-dir", dest="data_dir", help="folder for the database, uploads and logs")
    tray = parser.add_mutually_exclusive_group()
    tray.add_argument("--tray", dest="tray", action="store_const", const=True, help="show a tray icon")
    tray.add_argument("--no-tray", dest="tray", action="store_const", const=False, help="run headless")
    parser.add_argument("--open-browser", dest="open_browser", action="store_const", const=True,
                        help="open the admin page when started")
    parser.add_argument("--version", action="version", version=f"comfyui-gateway {__version__}")
    return parser.parse_args(argv)


async def serve(gateway: Gateway, on_started: Callable[[int], None] | None = None) -> None:
    """Start the gateway and run until SIGINT/SIGTERM, then stop it gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C arrives as KeyboardInterrupt
            pass
    port = await gateway.start()
    if on_started:
        on_started(port)
    try:
        await stop.wait()
    finally:
        await gateway.stop()


def run(settings, instance: InstanceLock) -> int:
    """Run the gateway: with the tray when asked (desktop.py), else headless until SIGINT/SIGTERM."""
    if settings.tray:
        from .desktop.runner import run_with_tray
        return run_with_tray(settings, instance)

    def started(port: int) -> None:
        instance.publish(admin_url(settings.host, port))
        if settings.open_browser:
            from .desktop.runner import open_page
            open_page(admin_url(settings.host, port))

    try:
        asyncio.run(serve(Gateway(settings), started))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        logger.error("cannot start: %s", exc)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Load settings, take the data folder's lock, set up logging, run the gateway."""
    args = parse_args(argv)
    cli = {k: getattr(args, k) for k in ("host", "port", "data_dir", "tray", "open_browser")}
    try:
        settings = load_settings(desktop_config_file(args.config, args.data_dir), cli)
        settings = desktop_defaults(settings, cli)  # the executable: per-user data folder, tray on
    except ConfigError as exc:
        print(f"comfyui-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    instance = InstanceLock(settings.data_path)
    try:
        owner = instance.acquire()
    except OSError as exc:
        print(f"comfyui-gateway: cannot use the data folder {settings.data_path}: {exc}", file=sys.stderr)
        return 1
    if not owner:  # a second launch: hand over to the running gateway (its page opens) instead of failing
        setup_logging(settings.log_level, None)
        from .desktop.runner import hand_over
        return hand_over(settings, instance)
    try:
        setup_logging(settings.log_level, settings.data_path)
        if is_frozen():
            seed_example_config(settings.data_path)
        return run(settings, instance)
    finally:
        instance.release()


if __name__ == "__main__":
    sys.exit(main())
