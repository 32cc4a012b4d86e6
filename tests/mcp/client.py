#!/usr/bin/env python3
"""The Python MCP SDK (`mcp`) as an agent would use it against Gatehouse's MCP gateway.

Streamable HTTP (mcp.client.streamable_http) plus the SDK's OAuthClientProvider (discovery
from the 401, dynamic client registration, PKCE) with tokens kept in memory and a loopback
redirect served here. Same command line and output as client.mjs; see README.md beside this file.

Nobody clicks anything: Gatehouse's /authorize answers 303 to a waiting page that answers 200
until the person decides (the test answers on the server's jsonl approver), then 303 to the
redirect URI. The redirect handler walks that chain with plain GETs, polling the waiting page,
and finally requests the callback URL, which the callback server below receives and hands to
the SDK's callback handler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse, urlunparse

import httpx2
from mcp import ClientSession
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcp.shared.exceptions import MCPError

POLL_S = 0.2
PATIENCE_S = 60.0
REQUEST_TIMEOUT_S = 120.0

EPILOG = """\
Steps run in the order given: --list lists the tools, --call calls TOOL with the JSON object of
the --args after it (default {}). One JSON line per step on stdout:
  {"step":"tools","tools":[names]}
  {"step":"call","tool":T,"isError":bool,"text":"the text blocks joined by newlines"}
  {"step":"error","message":M}       (plus "tool" and "code" for a JSON-RPC error of a call)
Exit status: 0 when every step got an answer (even isError results and JSON-RPC errors of
calls), 1 on an authorization, transport or protocol failure, 2 on bad arguments.
--scope replaces the scope of the authorization request (the SDK would otherwise ask for the
scope of the 401's WWW-Authenticate)."""


def out(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(msg: str) -> None:
    sys.stderr.write(f"client.py: {msg}\n")
    sys.stderr.flush()


class MemoryStorage(TokenStorage):
    """The SDK's TokenStorage, in memory: every run registers afresh."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Callback:
    """The loopback redirect target: the first request to /callback settles `result`."""

    def __init__(self) -> None:
        self.result: asyncio.Future[AuthorizationCodeResult] = asyncio.get_running_loop().create_future()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    def rearm(self) -> None:
        """A fresh result for another authorization (the SDK re-authorizes on a 403
        insufficient_scope within the same connection)."""
        if self.result.done():
            self.result = asyncio.get_running_loop().create_future()

    def fail(self, err: BaseException) -> None:
        if not self.result.done():
            self.result.set_exception(err)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1")
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # the headers say nothing we need
            parts = request_line.split(" ")
            target = urlparse(parts[1] if len(parts) > 1 else "/")
            q = {k: v[0] for k, v in parse_qs(target.query).items()}
            if target.path != "/callback":
                status, body = "404 Not Found", "not found\n"
            elif "code" in q:
                status, body = "200 OK", "authorized; you can close this\n"
                if not self.result.done():
                    self.result.set_result(
                        AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))
                    )
            else:
                status, body = "400 Bad Request", "authorization failed\n"
                why = q.get("error", "no code")
                if "error_description" in q:
                    why += f": {q['error_description']}"
                self.fail(RuntimeError(f"authorization failed: {why}"))
            data = body.encode()
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {len(data)}\r\n"
                f"connection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def walk_authorization(start: str, redirect_uri: str) -> None:
    """GETs `start`, following redirects by hand until one points at the redirect URI, polling
    any page that answers 200 (Gatehouse's waiting page); then requests the callback itself."""
    deadline = time.monotonic() + PATIENCE_S
    nxt = start
    async with httpx2.AsyncClient(follow_redirects=False, timeout=20.0) as http:
        while True:
            res = await http.get(nxt)
            if res.status_code in (301, 302, 303, 307, 308):
                location = res.headers.get("location")
                if not location:
                    raise RuntimeError(f"a {res.status_code} from {nxt} without a Location")
                to = urljoin(nxt, location)
                if to.startswith(redirect_uri):
                    await http.get(to)
                    return
                nxt = to
            elif res.status_code == 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gave up after {PATIENCE_S:.0f} s waiting at {nxt}")
                await asyncio.sleep(POLL_S)
            else:
                raise RuntimeError(f"GET {nxt} answered {res.status_code}")


def with_scope(url: str, scope: str | None) -> str:
    """The SDK prefers the 401's scope; a test asking for a narrower one says so here."""
    if not scope:
        return url
    u = urlparse(url)
    q = {k: v[0] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
    q["scope"] = scope
    return urlunparse(u._replace(query=urlencode(q)))


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in result.content if getattr(c, "type", None) == "text")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="client.py",
        description="Connect to an MCP endpoint through Gatehouse's OAuth, list tools and call them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", required=True, help="the MCP endpoint, e.g. http://127.0.0.1:PORT/mcp/NAME")
    p.add_argument("--redirect-port", type=int, default=0, help="callback port (0 = any free port)")
    p.add_argument("--scope", help="the scope to ask for instead of the 401's")
    p.add_argument("--list", action="append_const", const=("list",), dest="steps", help="list the tools")
    p.add_argument("--call", action="append", dest="steps", type=lambda t: ("call", t), metavar="TOOL")
    p.add_argument("--args", action="append", dest="steps", type=lambda a: ("args", a), metavar="JSON")
    ns = p.parse_args(argv)
    # --args belongs to the --call before it: fold the raw sequence into (kind, tool, args) steps.
    steps: list[tuple[str, str, dict[str, Any]]] = []
    for item in ns.steps or []:
        if item[0] == "list":
            steps.append(("list", "", {}))
        elif item[0] == "call":
            steps.append(("call", item[1], {}))
        else:
            if not steps or steps[-1][0] != "call":
                p.error("--args must follow a --call")
            try:
                parsed = json.loads(item[1])
            except json.JSONDecodeError as e:
                p.error(f"--args is not JSON: {e}")
            if not isinstance(parsed, dict):
                p.error("--args must be a JSON object")
            steps[-1] = ("call", steps[-1][1], parsed)
    ns.steps = steps
    return ns


async def run(ns: argparse.Namespace) -> int:
    callback = Callback()
    await callback.start(ns.redirect_port)
    redirect_uri = f"http://127.0.0.1:{callback.port}/callback"
    walking: list[asyncio.Task[None]] = []

    async def redirect_handler(url: str) -> None:
        target = with_scope(url, ns.scope)
        callback.rearm()
        log(f"authorizing at {urlparse(target)._replace(query='').geturl()}")

        async def walk() -> None:
            try:
                await walk_authorization(target, redirect_uri)
            except Exception as e:  # noqa: BLE001 - reported through the callback
                callback.fail(e)

        walking.append(asyncio.create_task(walk()))

    async def callback_handler() -> AuthorizationCodeResult:
        return await callback.result

    provider = OAuthClientProvider(
        server_url=ns.url,
        client_metadata=OAuthClientMetadata(
            client_name="sdk-test-client",
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
            scope=ns.scope,
        ),
        storage=MemoryStorage(),
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    try:
        async with (
            httpx2.AsyncClient(
                auth=provider, timeout=httpx2.Timeout(30.0, read=REQUEST_TIMEOUT_S), follow_redirects=False
            ) as http,
            streamable_http_client(ns.url, http_client=http) as (read, write),
            ClientSession(read, write, read_timeout_seconds=REQUEST_TIMEOUT_S) as session,
        ):
            try:
                await session.initialize()
            except Exception as e:  # noqa: BLE001 - reported as a step
                out({"step": "error", "message": f"connect: {e}"})
                return 1
            for kind, tool, args in ns.steps:
                if kind == "list":
                    try:
                        listed = await session.list_tools()
                    except Exception as e:  # noqa: BLE001
                        out({"step": "error", "message": f"tools/list: {e}"})
                        return 1
                    out({"step": "tools", "tools": [t.name for t in listed.tools]})
                    continue
                try:
                    result = await session.call_tool(tool, args)
                except MCPError as e:
                    # A JSON-RPC error answer is an answer: report it and go on.
                    out({"step": "error", "tool": tool, "code": e.code, "message": e.message})
                    continue
                except Exception as e:  # noqa: BLE001
                    out({"step": "error", "tool": tool, "message": str(e)})
                    return 1
                out({"step": "call", "tool": tool, "isError": bool(result.is_error), "text": text_of(result)})
        return 0
    finally:
        for t in walking:
            t.cancel()
        await callback.close()


def main() -> int:
    ns = parse_args(sys.argv[1:])
    try:
        return asyncio.run(run(ns))
    except BaseException as e:  # noqa: BLE001 - the SDK wraps failures in exception groups
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        out({"step": "error", "message": flatten(e)})
        return 1


def flatten(e: BaseException) -> str:
    """The messages of an exception group's leaves (anyio task groups wrap everything)."""
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(flatten(x) for x in e.exceptions)
    return str(e) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
