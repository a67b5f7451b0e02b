"""What every command shares: loading settings from --config/--data, opening the store, output."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from courrier import config
from courrier.store import Store, open_store

Handler = Callable[[argparse.Namespace], Awaitable[int]]

#: Exit codes (DESIGN.md §6).
OK, FAILURE, USAGE = 0, 1, 2


if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction


def command_group(sub: Subparsers, name: str, help_text: str) -> Subparsers:
    """``courrier NAME ACTION …``."""
    return sub.add_parser(name, help=help_text).add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )


def command(
    group: Subparsers, name: str, help_text: str, func: Handler, *, json: bool = False
) -> argparse.ArgumentParser:
    """A command taking --config/--data (and --json when it lists things)."""
    parser = group.add_parser(name, help=help_text)
    add_location_options(parser)
    if json:
        add_json_option(parser)
    parser.set_defaults(func=func)
    return parser


def add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="configuration file (TOML)")
    parser.add_argument("--data", metavar="DIR", help="data directory (default: ./data)")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def load_settings(args: argparse.Namespace, **extra: Any) -> config.Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "data", None):
        overrides["server.data_dir"] = args.data
    overrides.update(extra)
    return config.load(getattr(args, "config", None), overrides=overrides)


async def open_from_args(args: argparse.Namespace) -> tuple[config.Settings, Store]:
    settings = load_settings(args)
    return settings, await open_store(settings)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Plain aligned columns, readable in a terminal and easy to grep."""
    table = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def read_password_stdin() -> str:
    """The first line of standard input, without its line ending."""
    line = sys.stdin.readline()
    return line.rstrip("\r\n")
