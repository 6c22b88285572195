"""A standard WebSocket client for tests/it/close.rs: Python's `websockets` (asyncio).

Runs one scenario given as JSON on the command line, then prints one JSON line saying how the
connection ended and how long the TCP connection outlived the close handshake: the time from the
moment this client had both sent and received a close frame to the moment the server's end of
the TCP stream arrived (`connection_lost`). `websockets`, like browsers, waits for the server to
close TCP first (RFC 6455 7.1.1), up to `close_timeout`.

Scenario: {"url": ..., "headers": {...}, "steps": [...], "close": "client" | "server"}
Steps: {"send": text}, {"send_repeat": text, "times": n} (stops when the server closes),
{"send_bytes": n} (one text frame of n bytes), {"recv": true}, {"announce": name} (prints
{"event": name} and waits for a line on stdin, so the test can act while the socket is open).
"""

import asyncio
import json
import sys
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class Timed(ClientConnection):
    """Notes when the close handshake completed and when the TCP connection ended."""

    handshake_done_at = None
    lost_at = None
    lost_with_error = None

    def data_received(self, data):
        super().data_received(data)
        self._note_handshake()

    def _note_handshake(self):
        p = self.protocol
        if self.handshake_done_at is None and p.close_rcvd is not None and p.close_sent is not None:
            self.handshake_done_at = time.monotonic()

    def connection_lost(self, exc):
        self.lost_at = time.monotonic()
        self.lost_with_error = None if exc is None else repr(exc)
        super().connection_lost(exc)


async def run(scenario):
    received = []
    async with connect(
        scenario["url"],
        additional_headers=scenario.get("headers", {}),
        origin=scenario.get("origin"),
        create_connection=Timed,
        close_timeout=5,
        ping_interval=None,
        max_size=None,
    ) as ws:
        try:
            for step in scenario.get("steps", []):
                if "send" in step:
                    await ws.send(step["send"])
                elif "send_repeat" in step:
                    for _ in range(step["times"]):
                        await ws.send(step["send_repeat"])
                elif "send_bytes" in step:
                    await ws.send("x" * step["send_bytes"])
                elif "recv" in step:
                    received.append(await ws.recv())
                elif "announce" in step:
                    print(json.dumps({"event": step["announce"]}), flush=True)
                    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        except ConnectionClosed:
            pass
        if scenario.get("close") == "client":
            await ws.close(1000, "bye")
        else:
            try:
                while True:
                    received.append(await ws.recv())
            except ConnectionClosed:
                pass
        await ws.wait_closed()
    rcvd, sent = ws.protocol.close_rcvd, ws.protocol.close_sent
    done = ws.handshake_done_at
    return {
        "event": "closed",
        "received_code": rcvd.code if rcvd else None,
        "received_reason": rcvd.reason if rcvd else None,
        "sent_code": sent.code if sent else None,
        "tcp_outlived_handshake_ms": None if done is None else (ws.lost_at - done) * 1000,
        "lost_with_error": ws.lost_with_error,
        "messages": len(received),
    }


async def bounded(scenario):
    # Every wait above is bounded by websockets' own timeouts but one: a server that never
    # closes. This bound makes the test fail instead of hang.
    return await asyncio.wait_for(run(scenario), 20)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(bounded(json.loads(sys.argv[1])))), flush=True)
