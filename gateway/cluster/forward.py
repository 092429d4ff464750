"""Requests only the dispatcher can carry out, passed on to it from the other instances.

Cancelling, interrupting, re-prioritising and checking a worker change what the dispatcher owns. An
instance that does not dispatch sends such a request as it came (method, path, query, body, Content-Type,
and the client's token however it presented it) to the address of the instance that holds the lease,
and answers with that instance's answer. The dispatcher checks the client's credentials itself; nothing is
trusted because it came from a peer. While no instance holds the lease (a takeover under way) it
waits up to one lease period, then answers 503 ``no_dispatcher``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ..errors import GatewayError

logger = logging.getLogger(__name__)

FORWARDED = "X-Gateway-Forwarded"
PASSED_HEADERS = ("Content-Type", "Accept")


class NoDispatcher(GatewayError):
    """No instance holds the dispatcher lease right now (a takeover is under way)."""

    status = 503
    type = "no_dispatcher"


async def forward_to_dispatcher(handler) -> bool:
    """Carry a request to the dispatcher when this instance is not it; True when answered from there."""
    gw = handler.gw
    if gw.jobs.dispatching or not gw.cluster.clustered:
        return False
    request = handler.request
    if request.headers.get(FORWARDED):
        raise NoDispatcher("this instance no longer dispatches; try again")
    deadline = time.monotonic() + gw.settings.lease_seconds + 1.0
    while True:
        address = gw.cluster.dispatcher_address()
        if gw.jobs.dispatching:
            return False  # this instance took over meanwhile
        if address:
            response = await _send(gw, address, handler)
            if response is not None:
                handler.set_status(response.code)
                for name in ("Content-Type", "Retry-After"):
                    if name in response.headers:
                        handler.set_header(name, response.headers[name])
                handler.finish(response.body or b"")
                return True
        if time.monotonic() > deadline:
            raise NoDispatcher("no gateway instance dispatches right now (a takeover is under way); "
                               "try again in a few seconds")
        await asyncio.sleep(0.25)
        gw.cluster.sync.soon("lease")


async def _send(gw, address: str, handler):
    request = handler.request
    headers = {name: request.headers[name] for name in PASSED_HEADERS if name in request.headers}
    if handler.token:  # however the client presented it (header, query, the admin page's cookie)
        headers["Authorization"] = f"Bearer {handler.token}"
    headers[FORWARDED] = gw.cluster.name
    body = handler.body if request.method in ("POST", "PUT", "PATCH") else None
    outgoing = HTTPRequest(address + request.uri, method=request.method, headers=headers, body=body,
                           follow_redirects=False, request_timeout=gw.settings.worker_request_timeout,
                           connect_timeout=2.0, allow_nonstandard_methods=True, decompress_response=False)
    try:
        response = await AsyncHTTPClient().fetch(outgoing, raise_error=False)
    except Exception as exc:  # unreachable: the lease row may be stale; look again
        logger.info("cannot reach the dispatcher at %s: %s", address, exc)
        return None
    if response.code == 599 or (response.code == 503 and b"no_dispatcher" in (response.body or b"")):
        return None
    return response
