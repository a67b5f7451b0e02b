"""`courrier config check|show`: validate the settings and show what is in effect."""

from __future__ import annotations

import argparse
import dataclasses

from courrier.cli.common import (
    OK,
    Subparsers,
    command,
    command_group,
    load_settings,
    print_json,
)


def register(sub: Subparsers) -> None:
    group = command_group(sub, "config", "configuration")
    command(group, "check", "validate the configuration file and environment", check)
    command(group, "show", "print the settings in effect", show, json=True)


async def check(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    print(f"Configuration is valid ({settings.source}).")
    return OK


async def show(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    values = dataclasses.asdict(settings)
    if args.json:
        print_json(values)
        return OK
    for section, table in values.items():
        if not isinstance(table, dict):
            continue
        for key, value in table.items():
            if isinstance(value, dict):
                for sub_key, sub_value in value.items():
                    print(f"{section}.{key}.{sub_key} = {sub_value!r}")
            else:
                print(f"{section}.{key} = {value!r}")
    return OK
