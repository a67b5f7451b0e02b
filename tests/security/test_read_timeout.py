"""ReadTimeout: a client that sends nothing for too long is cut off; time spent handling its
commands never counts, and a cancellation from elsewhere stays a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from courrier.security.limits import ReadTimeout


async def test_a_silent_client_times_out_after_the_limit() -> None:
    reader = asyncio.StreamReader()
    timer = ReadTimeout()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await timer.read(reader, 100, 0.05)
    assert 0.04 <= loop.time() - started < 1.0
    timer.close()


async def test_data_in_time_is_returned_and_each_read_gets_its_own_limit() -> None:
    reader = asyncio.StreamReader()
    timer = ReadTimeout()
    loop = asyncio.get_running_loop()
    for n in range(5):
        # Each read waits 0.1 s of its 0.4 s: five of them take longer than one limit.
        loop.call_later(0.1, reader.feed_data, b"x%d" % n)
        assert await timer.read(reader, 100, 0.4) == b"x%d" % n
    timer.close()


async def test_time_spent_between_reads_does_not_count() -> None:
    reader = asyncio.StreamReader()
    timer = ReadTimeout()
    reader.feed_data(b"first")
    assert await timer.read(reader, 100, 0.3) == b"first"
    await asyncio.sleep(0.5)  # handling the command, longer than the limit
    asyncio.get_running_loop().call_later(0.05, reader.feed_data, b"second")
    assert await timer.read(reader, 100, 0.3) == b"second"
    timer.close()


async def test_a_shorter_limit_after_a_longer_one_is_kept() -> None:
    reader = asyncio.StreamReader()
    timer = ReadTimeout()
    reader.feed_data(b"a")
    assert await timer.read(reader, 100, 600) == b"a"  # arms a timer ten minutes out
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await timer.read(reader, 100, 0.05)
    assert loop.time() - started < 1.0
    timer.close()


async def test_a_longer_limit_after_a_shorter_one_is_not_cut_short() -> None:
    reader = asyncio.StreamReader()
    timer = ReadTimeout()
    reader.feed_data(b"a")
    assert await timer.read(reader, 100, 0.03) == b"a"  # the timer fires at 0.03 s
    asyncio.get_running_loop().call_later(0.2, reader.feed_data, b"b")
    assert await timer.read(reader, 100, 1.0) == b"b"
    timer.close()


async def test_a_cancellation_from_elsewhere_is_not_turned_into_a_timeout() -> None:
    reader = asyncio.StreamReader()

    async def session() -> bytes:
        timer = ReadTimeout()
        try:
            return await timer.read(reader, 100, 600)
        finally:
            timer.close()

    task = asyncio.create_task(session())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
