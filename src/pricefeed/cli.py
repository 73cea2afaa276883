"""The ``pricefeed`` command. Its options are generated from :class:`~pricefeed.config.Settings`,
so a setting has one name everywhere. ``pricefeed watch`` needs only the client, so it works on an install
without the server's dependencies (``pip install pricefeed`` rather than ``pricefeed[server]``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_origin

from . import __version__

if TYPE_CHECKING:
    from .config import Settings

COMMANDS = ("serve", "bench", "watch")
SERVER_MISSING = "pricefeed: the server's dependencies are not installed: pip install 'pricefeed[server]'"


def build_parser() -> argparse.ArgumentParser:
    from .client import watch
    from .config import Settings, option_name

    parser = argparse.ArgumentParser(prog="pricefeed", description="A real-time market price gateway.")
    parser.add_argument("--version", action="version", version=f"pricefeed {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    watch.add_arguments(commands.add_parser(
        "watch", help="a live table of the prices any Lazer, seed-000 or Hermes endpoint sends",
        description=watch.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
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
    if args[:1] == ["watch"]:  # the client alone: no server module is imported
        from .client.watch import main as watch

        return watch(args[1:])
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "serve")
    try:
        parser = build_parser()
    except ImportError:
        print(SERVER_MISSING, file=sys.stderr)
        return 2
    namespace = parser.parse_args(args)
    if namespace.command == "bench":
        return int(_bench().run(namespace))
    from .config import ConfigError, load_settings

    values: dict[str, Any] = {k: v for k, v in vars(namespace).items() if k != "command"}
    try:
        settings = load_settings(values)
    except ConfigError as exc:
        print(f"pricefeed: {exc}", file=sys.stderr)
        return 2
    return serve(settings, args[1:])


def serve(settings: Settings, argv: Sequence[str] = ()) -> int:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)  # it logs every statement at DEBUG
    from .workers import run_workers, why_not, worker_count

    if worker_count(settings.workers) > 1:  # this process supervises; its children serve
        problem = why_not(settings)
        if problem is not None:
            print(f"pricefeed: {problem}", file=sys.stderr)
            return 2
        return run_workers(settings, argv)
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
