"""Run a fake ComfyUI by hand: ``python -m tests.fake_comfy --port 8188``."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from .server import FakeComfy


def _models(specs):
    models = {}
    for spec in specs or []:
        folder, _, files = spec.partition("=")
        models.setdefault(folder, []).extend(f for f in files.split(",") if f)
    return models


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m tests.fake_comfy", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8188)
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("--node-seconds", type=float, default=0.01)
    p.add_argument("--auth", help="user:pass (HTTP Basic required on every route)")
    p.add_argument("--models", action="append",
                   help="folder=file1,file2 (repeatable), e.g. checkpoints=sd15.safetensors")
    p.add_argument("--extra-nodes", default="", help="comma-separated extra node classes")
    p.add_argument("--missing-nodes", default="", help="comma-separated classes to remove")
    p.add_argument("--device-name", default=None)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--front-end-root", default=None,
                   help="the editor's static folder (default: the installed comfyui-frontend-package)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--fleet", type=int, default=0,
                   help="run this many simulators in this one process (ports --port, --port+1, ...; "
                        "--port 0 picks free ones); their URLs go to --fleet-file, one per line")
    p.add_argument("--fleet-file", default=None)
    return p.parse_args(argv)


async def _serve_fleet(args) -> None:
    """Many simulators in one process (benchmarks of a gateway with hundreds of workers)."""
    sims = []
    for index in range(args.fleet):
        sim = FakeComfy(speed=args.speed, node_seconds=args.node_seconds,
                        models=_models(args.models),
                        data_dir=f"{args.data_dir}/sim{index}" if args.data_dir else None)
        await sim.start(host=args.host, port=args.port + index if args.port else 0)
        sims.append(sim)
    if args.fleet_file:
        with open(args.fleet_file + ".part", "w") as handle:
            handle.write("".join(sim.url + "\n" for sim in sims))
        import os
        os.replace(args.fleet_file + ".part", args.fleet_file)
    try:
        await asyncio.Event().wait()
    finally:
        for sim in sims:
            await sim.stop()


async def _serve(args) -> None:
    if args.fleet:
        await _serve_fleet(args)
        return
    kwargs = {}
    if args.device_name:
        kwargs["device_name"] = args.device_name
    sim = FakeComfy(
        speed=args.speed, node_seconds=args.node_seconds,
        auth=tuple(args.auth.split(":", 1)) if args.auth else None,
        extra_nodes=[n for n in args.extra_nodes.split(",") if n],
        missing_nodes=[n for n in args.missing_nodes.split(",") if n],
        models=_models(args.models), data_dir=args.data_dir, **kwargs)
    if args.front_end_root:
        sim.frontend_root = Path(args.front_end_root)
    await sim.start(host=args.host, port=args.port)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_serve(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
