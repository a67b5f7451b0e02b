"""`courrier queue list|delete`: what waits to leave for other servers (Postfix's mailq/postsuper).

Delivery attempts, flush, hold and release come with the outbound queue runner.
"""

from __future__ import annotations

import argparse
import datetime

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


def register(sub: Subparsers) -> None:
    group = command_group(sub, "queue", "the outbound queue")
    command(group, "list", "list queued messages and their recipients", list_, json=True)
    command(group, "delete", "remove a queued message (no bounce is sent)", delete).add_argument(
        "queue_id"
    )


async def list_(args: argparse.Namespace) -> int:
    _, store = await open_from_args(args)
    async with store:
        queued = await store.list_queue()
    if args.json:
        print_json(
            [
                {
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
                for q in queued
            ]
        )
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
    if not removed:
        print(f"No queued message {args.queue_id}.")
        return FAILURE
    print(f"Deleted {args.queue_id} from the queue.")
    return OK
