"""The ``pricefeed`` command. Its options are generated from :class:`~pricefeed.config.Settings`,
so a setting has one name everywhere."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, get_origin

from . import __version__
from .config import ConfigError, Settings, load_settings, option_name

COMMANDS = ("serve", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pricefeed", description="A real-time market price gateway.")
    parser.add_argument("--version", action="version", version=f"pricefeed {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the service (the default command)",
                                description="Run the service. Every option can also be set with an environment "
                                            "variable PRICEFEED_<NAME>, in a .env file or in --config FILE.")
    for name, field in Settings.model_fields.items():
        repeatable = get_origin(field.annotation) is list or "list[" in str(field.annotation)
        default = field.get_default(call_default_factory=True)
        shown = ", ".join(map(str, default)) if isinstance(default, list) else default
        serve.add_argument(option_name(name), dest=name, metavar=name.split("_")[-1].upper(),
                           action="append" if repeatable else "store", default=None,
                           help=f"{field.description} (default: {shown})")
    bench = commands.add_parser("bench", help="measure throughput, latency and memory against two baselines",
                                description=_bench().__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _bench().add_arguments(bench)
    return parser


def _bench() -> Any:
    """The benchmark harness, which lives in ``benchmarks/`` beside ``src/`` in a checkout."""
    try:
        import benchmarks.cli as bench
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "benchmarks" / "cli.py").exists():
            raise SystemExit("pricefeed bench needs a source checkout (benchmarks/ next to src/)") from None
        sys.path.insert(0, str(root))
        import benchmarks.cli as bench
    return bench


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "serve")
    parser = build_parser()
    namespace = parser.parse_args(args)
    if namespace.command == "bench":
        return int(_bench().run(namespace))
    values: dict[str, Any] = {k: v for k, v in vars(namespace).items() if k != "command"}
    try:
        settings = load_settings(values)
    except ConfigError as exc:
        print(f"pricefeed: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


def serve(settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)  # it logs every statement at DEBUG
    from .app import App
    from .products import ProductsFileError
    from .sources.kite.instruments import InstrumentsError

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(App(settings).run())
    except (OSError, ProductsFileError, InstrumentsError) as exc:  # e.g. a port in use, a bad products file
        print(f"pricefeed: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (Windows)
        return None
    return uvloop.new_event_loop
