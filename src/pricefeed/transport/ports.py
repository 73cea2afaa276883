"""A listening socket several processes share (``SO_REUSEPORT``): the kernel spreads new connections over them.

With ``--workers N`` every edge process binds the same ports; each accepted
connection then lives in one process, and a process that dies takes only its
own connections with it.
"""

from __future__ import annotations

import socket


def shared_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A non-blocking listening TCP socket on ``host:port`` that other processes may bind too."""
    family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
