"""The page's web server: aiohttp on a thread of its own, bound to one address (127.0.0.1 by default), GET only.

Why a thread and not the REPL's event loop: a step blocks the main thread for as long as it runs (pexpect waits
on the consoles), and the page must keep moving meanwhile (a step's diagram appears when it is observed, the
timer runs). The main thread only hands events over (`publish`, a queue put); folding them, drawing the diagram
(Graphviz) and pushing to browsers happen here, so the page adds almost nothing to a step.

Safety: nothing on the page can type into a console or change the session (there is no route that takes input),
and a request whose Host header is not the address served is refused, so a web page elsewhere cannot reach this
root process through DNS rebinding.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any

from aiohttp import web

from workshop.serve.page_state import PageModel

DEFAULT_ADDRESS = "127.0.0.1:8017"
HEARTBEAT = 15.0
"""Seconds between keep-alive comments on an idle stream: a closed browser tab is noticed within this."""

_SECURITY_HEADERS = {
    # style-src needs 'unsafe-inline': the terminal views carry their colours in style attributes
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
    "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


_BYE = "event: bye\ndata: {}\n\n"
"""The last message: workshop is ending."""


class ServeError(Exception):
    """The page cannot be served (a malformed address, a port in use); the message says what to do."""


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1); an IPv6 host in brackets."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ServeError(f"--serve-at takes an IP address, not {host!r} (e.g. 127.0.0.1:8017)") from None
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ServeError(f"--serve-at needs a port between 0 (any free one) and 65535, not {port!r}")
    return host, int(port)


def _asset(name: str) -> bytes:
    return resources.files("workshop.serve").joinpath("assets").joinpath(name).read_bytes()


class PageServer:
    def __init__(self, host: str, port: int, model: PageModel) -> None:
        self.host, self.port, self.model = host, port, model
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="workshop-serve", daemon=True)
        self._runner: web.AppRunner | None = None
        self._streams: dict[str, set[asyncio.Queue[str]]] = {"room": set(), "trainer": set()}
        # one worker: events are folded in the order they happened, and Graphviz never runs twice at once
        self._fold = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workshop-page")
        self.started_in: float = 0.0
        """Seconds from `start()` to listening (a benchmark row)."""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def _allowed_hosts(self) -> set[str]:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return {f"{host}:{self.port}"}

    # -- life cycle (main thread) ----------------------------------------------------------------------------------
    def start(self) -> str:
        began = time.perf_counter()
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        try:
            future.result(timeout=10)
        except OSError as e:
            self._stop_loop()
            raise ServeError(f"cannot serve on {self.host}:{self.port}: {e.strerror or e}") from e
        self.started_in = time.perf_counter() - began
        return self.url

    def publish(self, event: object) -> None:
        """Called from the session's thread for every event: only a hand-over, never work."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._received, event)

    def stop(self) -> None:
        """Says goodbye to every open page (so it stops reconnecting and tells the trainer), then closes the port."""
        if self._runner is not None and self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=5)
        self._stop_loop()

    async def _close(self) -> None:
        for queues in self._streams.values():
            for q in queues:
                if q.full():
                    q.get_nowait()
                q.put_nowait(_BYE)
        deadline = time.monotonic() + 1.0
        while any(self._streams.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert self._runner is not None
        await self._runner.cleanup()

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._fold.shutdown(wait=False, cancel_futures=True)

    # -- on the server's loop ----------------------------------------------------------------------------------------
    async def _listen(self) -> None:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._page("trainer"))
        app.router.add_get("/room", self._page("room"))
        app.router.add_get("/slides", self._static("slides.html", "text/html"))
        app.router.add_get("/slides.js", self._static("slides.js", "text/javascript"))
        app.router.add_get("/deck", self._deck)
        app.router.add_get("/page.js", self._static("page.js", "text/javascript"))
        app.router.add_get("/page.css", self._static("page.css", "text/css"))
        app.router.add_get("/events/{view:room|trainer}", self._events)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, reuse_port=False).start()
        if self.port == 0:  # the kernel chose one (tests)
            self.port = int(self._runner.addresses[0][1])

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.host not in self._allowed_hosts:
            return web.Response(status=403, text=f"refused: this page answers only to Host {self.host}:{self.port}\n")
        response = await handler(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)  # the deck brings its own policy
        return response

    def _page(self, view: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        html = _asset("page.html").decode().replace("{{view}}", view)

        async def page(request: web.Request) -> web.Response:
            return web.Response(text=html, content_type="text/html", charset="utf-8")

        return page

    def _static(self, name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        body = _asset(name)

        async def static(request: web.Request) -> web.Response:
            return web.Response(body=body, content_type=content_type, charset="utf-8")

        return static

    async def _deck(self, request: web.Request) -> web.Response:
        deck = await self._loop.run_in_executor(self._fold, self.model.deck)
        if deck is None:
            return web.Response(status=404, text="no lesson has started yet\n")
        # `workshop slides`' own page, with its own policy in a meta tag (only its inline style and script, by hash);
        # a policy in the header would be combined with it and refuse them
        headers = {"Content-Security-Policy": "frame-ancestors 'self'"}
        return web.Response(text=deck, content_type="text/html", charset="utf-8", headers=headers)

    def _received(self, event: object) -> None:
        future = self._loop.run_in_executor(self._fold, self.model.apply, event)
        future.add_done_callback(lambda f: None if f.cancelled() or f.exception() or not f.result() else self._push())

    def _push(self) -> None:
        for view, queues in self._streams.items():
            message = self._message(view)
            for q in queues:
                if q.full():  # a slow browser skips to the newest page: each message is the whole page
                    q.get_nowait()
                q.put_nowait(message)

    def _message(self, view: str) -> str:
        state = self.model.state
        data: dict[str, Any] = state.for_trainer() if view == "trainer" else state.for_room()
        return f"event: state\ndata: {json.dumps(data)}\n\n"

    async def _events(self, request: web.Request) -> web.StreamResponse:
        view = request.match_info["view"]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **_SECURITY_HEADERS})
        await response.prepare(request)
        async with self._subscribed(view) as queue:
            await response.write(self._message(view).encode())
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), HEARTBEAT)
                except asyncio.TimeoutError:
                    message = ": still here\n\n"
                try:
                    await response.write(message.encode())
                except (ConnectionResetError, RuntimeError):
                    break
                if message is _BYE:
                    break
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    @contextlib.asynccontextmanager
    async def _subscribed(self, view: str) -> AsyncIterator[asyncio.Queue[str]]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=8)
        self._streams[view].add(queue)
        try:
            yield queue
        finally:
            self._streams[view].discard(queue)
