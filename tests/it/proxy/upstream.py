"""A backend in another language behind wsauthn's proxy, for tests/it/proxy/: Python's aiohttp.

Listens on 127.0.0.1 (port 0 unless PORT is set; HTTPS with CERT and KEY, PEM files) and prints {"event": "listening", "port": N},
then one JSON line per event the tests wait for: {"event": "ws_open", "id", "path", "headers"},
{"event": "ws_closed", "id", "code"}, {"event": "http", "method", "path", "headers"}.

HTTP, any method, any path under /game:
  /game/status/<n>  answers <n> with X-Upstream: yes and two Set-Cookie headers
  /game/redirect    answers 302 to /elsewhere
  /game/drip        sends "first\\n", waits for /control/release, sends "last\\n"
  /game/upload      prints {"event": "chunk", "received"} as each piece of the body arrives, then
                    answers with the whole body
  anything else     answers JSON: method, path with query, headers, body length
WebSocket, any path under /game: sends {"type":"hello","path","headers"} first, then echoes
every text and binary frame, except these texts:
  close:<code>:<reason>  closes with that code
  drop                   ends the TCP connection without a close frame
  flood:<n>:<bytes>      sends n binary frames of that size, printing {"event": "flooded",
                         "sent"} every 100 frames and at the end
  pause                  stops reading until /control/resume
  count                  answers {"type":"count","frames":<frames received so far>}
  big:<bytes>            sends one text frame of that size
Control (not under /game, called directly): POST /control/release, POST /control/resume.
"""

import asyncio
import json
import os
import ssl
import sys

from aiohttp import WSMsgType, web

released = asyncio.Event()
resumed = asyncio.Event()
sockets = 0


def say(**event):
    print(json.dumps(event), flush=True)


def headers_of(request):
    seen = {}
    for name, value in request.headers.items():
        seen.setdefault(name.lower(), []).append(value)
    return seen


async def control(request):
    {"release": released, "resume": resumed}[request.match_info["what"]].set()
    return web.Response(text="ok")


async def socket(request):
    global sockets
    sockets += 1
    me = sockets
    ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
    await ws.prepare(request)
    say(event="ws_open", id=me, path=request.path_qs, headers=headers_of(request))
    await ws.send_json({"type": "hello", "path": request.path_qs, "headers": headers_of(request)})
    frames = 0
    try:
        async for msg in ws:
            frames += 1
            if msg.type == WSMsgType.TEXT:
                text = msg.data
                if text.startswith("close:"):
                    _, code, reason = text.split(":", 2)
                    await ws.close(code=int(code), message=reason.encode())
                    break
                if text == "drop":
                    request.transport.abort()
                    break
                if text.startswith("flood:"):
                    _, n, size = text.split(":")
                    payload = b"x" * int(size)
                    for i in range(int(n)):
                        await ws.send_bytes(payload)
                        if (i + 1) % 100 == 0:
                            say(event="flooded", id=me, sent=i + 1)
                    say(event="flooded", id=me, sent=int(n), done=True)
                    continue
                if text == "pause":
                    say(event="paused", id=me)
                    await resumed.wait()
                    continue
                if text == "count":
                    await ws.send_json({"type": "count", "frames": frames})
                    continue
                if text.startswith("big:"):
                    await ws.send_str("y" * int(text[4:]))
                    continue
                await ws.send_str(text)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
    finally:
        say(event="ws_closed", id=me, code=ws.close_code)
    return ws


async def http(request):
    say(event="http", method=request.method, path=request.path_qs, headers=headers_of(request))
    tail = request.match_info.get("tail", "")
    if tail.startswith("status/"):
        response = web.Response(status=int(tail[7:]), text="teapot", headers={"X-Upstream": "yes"})
        response.headers.add("Set-Cookie", "a=1")
        response.headers.add("Set-Cookie", "b=2")
        return response
    if tail == "redirect":
        return web.Response(status=302, headers={"Location": "/elsewhere"})
    if tail == "drip":
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"first\n")
        await released.wait()
        await response.write(b"last\n")
        await response.write_eof()
        return response
    if tail == "upload":
        body = b""
        async for chunk in request.content.iter_any():
            say(event="chunk", length=len(chunk), received=len(body) + len(chunk))
            body += chunk
        return web.Response(body=body)
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path": request.path_qs,
            "headers": headers_of(request),
            "bodyLength": len(body),
        }
    )


async def game(request):
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await socket(request)
    return await http(request)


async def main():
    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("POST", "/control/{what}", control)
    app.router.add_route("*", "/game", game)
    app.router.add_route("*", "/game/{tail:.*}", game)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tls = None
    if os.environ.get("CERT"):
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(os.environ["CERT"], os.environ["KEY"])
    site = web.TCPSite(runner, "127.0.0.1", int(os.environ.get("PORT", "0")), ssl_context=tls)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    say(event="listening", port=port)
    # Ends with the test: its stdin closes when it drops the process.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
