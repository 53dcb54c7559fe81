"""Process set-up for ``speech-qa serve``, done before anything heavy loads.

Kept free of heavy imports (no gradio, no torch) on purpose: a busy ``--port`` must fail in
a fraction of a second, before the model loads, and the malloc arena limit must be set
before the first threads start.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import sys

MALLOC_ARENAS = 2
"""glibc malloc arenas for the server. A cheap bound on per-thread heaps (DESIGN.md); on its own
it did not flatten the memory creep under load (``bench/RESULTS.md``, Load, tried and not
kept as the fix), so it stays as a bound, not as the remedy."""


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX)``), before the server starts threads.

    Why here and not ``MALLOC_ARENA_MAX`` in the environment: glibc reads that variable only
    at process start, so it would need a re-exec; ``mallopt`` takes effect for the arenas
    created afterwards, and ``serve`` calls it before any thread exists. The variable is set
    too, so child processes (a local Ray's workers) inherit the limit.

    Returns:
        Whether the limit was applied (False on a C library without ``mallopt``).
    """
    os.environ.setdefault("MALLOC_ARENA_MAX", str(arenas))
    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        m_arena_max = -8  # from glibc's malloc.h
        return bool(libc.mallopt(m_arena_max, arenas))
    except (OSError, AttributeError):
        return False


class PortInUseError(OSError):
    """The ``--port`` asked for is taken (or not allowed) on that interface."""


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind ``host:port`` now, before the model loads, so a busy port fails fast.

    The socket is handed to uvicorn, so nothing can take the port in between. It is bound
    but not listening: until the server is ready, connections are refused rather than left
    waiting in a backlog (a client that can connect gets answered).

    Raises:
        PortInUseError: One line naming the port and the ``--port`` option.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(f"port {port} on {host} is already in use: "
                                 "stop what uses it or choose another with --port") from None
        if exc.errno == errno.EACCES:
            raise PortInUseError(f"port {port} on {host} is not allowed for this user: "
                                 "choose one above 1023 with --port") from None
        raise PortInUseError(f"cannot listen on {host}:{port} ({exc.strerror}): "
                             "check --host and --port") from None
    sock.set_inheritable(True)
    return sock


def check_port_free(host: str, port: int) -> None:
    """Fail now if ``host:port`` cannot be bound (for servers that bind it themselves later).

    Raises:
        PortInUseError: One line naming the port and the ``--port`` option.
    """
    bind_socket(host, port).close()


__all__ = ["MALLOC_ARENAS", "PortInUseError", "bind_socket", "check_port_free", "limit_malloc_arenas"]
