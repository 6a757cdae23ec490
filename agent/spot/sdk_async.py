"""Await the SDK's `*_async` calls from asyncio.

`bosdyn-client` returns a `FutureWrapper` around a gRPC future; it offers
`add_done_callback(cb)` (called on a gRPC thread with the wrapper) and `result()` (which
turns the response into a value or raises the SDK's typed error). We resolve an asyncio future
from that callback, so waiting on the robot never occupies a thread or blocks the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def await_sdk(sdk_future: Any) -> Any:
    """The value of an SDK `*_async` call, or the SDK error it raised."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def _settle(_: Any) -> None:
        if done.done():
            return
        try:
            value = sdk_future.result()
        except BaseException as exc:  # handed to the awaiting task, not swallowed
            done.set_exception(exc)
        else:
            done.set_result(value)

    def _on_done(_: Any) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(_settle, None)

    sdk_future.add_done_callback(_on_done)
    try:
        return await done
    except asyncio.CancelledError:
        sdk_future.cancel()
        raise
