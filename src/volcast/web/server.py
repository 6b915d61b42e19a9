"""Listening: the address is resolved and bound before anything else starts, so a busy port or
a host that is not this machine's is one line and exit 2 (uvicorn would print its own line
and exit 3), then uvicorn serves on exactly those sockets (no second bind that could race)."""

import errno
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import uvicorn
from fastapi import FastAPI

from volcast.errors import VolcastError


def _refusal(host: str, port: int, error: OSError) -> str:
    where = f"cannot listen on {host}:{port}"
    if error.errno == errno.EADDRINUSE:
        return f"{where}: the port is in use (another volcast serve?); choose another --port"
    if error.errno == errno.EADDRNOTAVAIL:
        return (f"{where}: {host} is not an address of this machine; use 127.0.0.1, 0.0.0.0 "
                "or one of its own addresses")
    if error.errno == errno.EACCES:
        return f"{where}: permission denied (ports below 1024 need root); choose another --port"
    return f"{where}: {error.strerror or error}"


Found = list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]]


def resolve(host: str, port: int) -> Found:
    """What ``host`` resolves to (for listening), each address once."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except UnicodeError:
        raise VolcastError(f"cannot listen on {host}: not a valid host name; give an address "
                           "of this machine with --host") from None
    except socket.gaierror as error:
        raise VolcastError(f"cannot listen on {host}: the name does not resolve "
                           f"({error.strerror}); give an address of this machine with "
                           "--host") from None
    return list(dict.fromkeys(found))


def addresses(found: Found) -> list[str]:
    return [address[0] for *_, address in found]


@contextmanager
def listening(found: Found, host: str, port: int) -> Iterator[list[socket.socket]]:
    """Sockets bound to the addresses ``host`` resolved to (as asyncio binds them: address
    reuse on, IPv6 sockets IPv6 only), closed on exit."""
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in found:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                raise VolcastError(_refusal(host, port, error)) from None
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def run(app: FastAPI, sockets: list[socket.socket]) -> None:
    """Serve until Ctrl-C or SIGTERM, without uvicorn's access log (requests, and whatever
    they carry, are not logged). uvicorn shuts down gracefully on either (requests in flight
    finish, the app's lifespan ends: the live service stops), then raises the signal again
    once it has stopped; both then end here, so the exit status is 0 as systemd expects."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with suppress(KeyboardInterrupt):
            server.run(sockets)
    finally:
        signal.signal(signal.SIGTERM, previous)
