"""A graceful stop: real signals to this process, handled the way a run handles them."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from catalog_images.generation.stop import StopRequest, stop_on_signals


def test_the_first_signal_asks_for_a_stop_and_the_second_acts_as_before():
    seen: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda number, frame: seen.append(number))

    async def main() -> tuple[bool, str | None]:
        stop = StopRequest()
        with stop_on_signals(stop, logging.getLogger("test"), lambda: 3):
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(stop.wait(), 2)  # the loop wakes up for it
            assert seen == []  # the previous handler did not run
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
        return stop.requested, stop.signal_name

    try:
        assert asyncio.run(main()) == (True, "SIGTERM")
        assert seen == [signal.SIGTERM]  # the second signal reached the previous handler
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM] * 2  # and it is installed again after the block
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_pause_ends_early_when_a_stop_is_requested():
    async def main() -> float:
        stop = StopRequest()
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, stop.set, "SIGINT")
        started = loop.time()
        await stop.pause(30)
        return loop.time() - started

    assert asyncio.run(main()) < 5
