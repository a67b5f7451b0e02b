"""`courrier queue list|show|flush|hold|release|delete`: what waits to leave for other servers
(Postfix's mailq, postcat -q, postqueue -f and postsuper -h/-H/-d).

A running server's queue runner sees flushed and released recipients at its next look, within
``queue.scan_interval`` seconds.
"""

from __future__ import annotations

import argparse
import datetime
import sys

from courrier.cli.common import (
    FAILURE,
    OK,
    Subparsers,
    command,
    command_group,
    human_size,
    open_from_args,
    print_json,
)
from courrier.store.models import QueuedMessage


def register(sub: Subparsers) -> None:
    group = command_group(sub, "queue", "the outbound queue")
    command(group, "list", "list queued messages and their recipients", list_, json=True)
    command(
        group, "show", "print a queued message as it will be sent", show, json=True
    ).add_argument("queue_id")
    flush = command(
        group,
        "flush",
        "try queued recipients again now (all, or one message's)",
        flush_,
        json=True,
    )
    flush.add_argument("queue_id", nargs="?")
    command(
        group, "hold", "keep a message's recipients from being tried", hold, json=True
    ).add_argument("queue_id")
    command(
        group, "release", "let held recipients be tried again, now", release, json=True
    ).add_argument("queue_id")
    command(
        group, "delete", "remove a queued message (no bounce is sent)", delete, json=True
    ).add_argument("queue_id")


def _as_json(q: QueuedMessage) -> dict[str, object]:
    return {
        "queue_id": q.queue_id,
        "sender": q.sender,
        "size": q.size,
        "created_at": q.created_at,
        "recipients": [
            {
                "address": r.recipient,
                "state": r.state,
                "attempts": r.attempts,
                "next_attempt": r.next_attempt,
                "last_reply": r.last_reply,
            }
            for r in q.recipients
        ],
    }


async def list_(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        queued = await store.list_queue()
    if args.json:
        print_json([_as_json(q) for q in queued])
        return OK
    if not queued:
        print("Mail queue is empty")
        return OK
    for q in queued:
        when = datetime.datetime.fromtimestamp(q.created_at).strftime("%a %b %d %H:%M:%S")
        print(f"{q.queue_id:<12} {human_size(q.size):>9} {when}  <{q.sender}>")
        for r in q.recipients:
            detail = f" ({r.last_reply})" if r.last_reply else ""
            print(f"{'':<12} {r.state:>9}  {r.recipient}{detail}")
    print(f"-- {len(queued)} message(s)")
    return OK


async def delete(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        removed = await store.delete_queued(args.queue_id)
    if args.json:
        print_json({"queue_id": args.queue_id, "deleted": removed})
        return OK if removed else FAILURE
    if not removed:
        print(f"No queued message {args.queue_id}.")
        return FAILURE
    print(f"Deleted {args.queue_id} from the queue.")
    return OK


async def show(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        content = await store.read_queued_by_id(args.queue_id)
        entry = next((q for q in await store.list_queue() if q.queue_id == args.queue_id), None)
    if content is None or entry is None:
        if args.json:
            print_json(None)
        else:
            print(f"No queued message {args.queue_id}.")
        return FAILURE
    if args.json:
        # The message as text: undecodable octets (8-bit, not UTF-8) become U+FFFD.
        print_json({**_as_json(entry), "message": content.decode("utf-8", "replace")})
        return OK
    sys.stdout.buffer.write(content)
    return OK


async def flush_(args: argparse.Namespace) -> int:
    return await _requeue(args, ("queued",), "queued", "due now")


async def hold(args: argparse.Namespace) -> int:
    return await _requeue(args, ("queued",), "hold", "held")


async def release(args: argparse.Namespace) -> int:
    return await _requeue(args, ("hold",), "queued", "released, due now")


async def _requeue(args: argparse.Namespace, states: tuple[str, ...], state: str, what: str) -> int:
    _, store = await open_from_args(args)
    async with store:
        changed = await store.requeue(args.queue_id, states, state)
    if args.json:
        print_json({"queue_id": args.queue_id, "changed": changed})
        return OK if changed or args.queue_id is None else FAILURE
    target = args.queue_id or "the queue"
    if not changed and args.queue_id is not None:
        print(f"No recipient of {target} to change (is the queue id right?).")
        return FAILURE
    print(f"{changed} recipient(s) of {target} {what}.")
    return OK
