"""`courrier config check|show`: validate the settings and show what is in effect."""

from __future__ import annotations

import argparse
import dataclasses

from courrier.cli.common import OK, add_json_option, add_location_options, load_settings, print_json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser("config", help="configuration").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = group.add_parser("check", help="validate the configuration file and environment")
    add_location_options(p)
    p.set_defaults(func=check)
    p = group.add_parser("show", help="print the settings in effect")
    add_location_options(p)
    add_json_option(p)
    p.set_defaults(func=show)


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
