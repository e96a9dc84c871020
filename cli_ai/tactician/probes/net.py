"""Probes of the network stack: the timers a new TCP socket gets (keepalive,
dead-peer detection, connect timeout) and a UDP receive buffer under a burst."""

from __future__ import annotations

import socket
import time

def probe_keepalive(count: int) -> tuple[int, str]:
    """`count` is the idle timeout (seconds) of the firewall or NAT in the path:
    obtained is how many of those seconds the first keepalive probe leaves
    spare (0 when the connection would already have been dropped)."""
    with socket.socket() as srv, socket.socket() as cli:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        cli.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        cli.connect(srv.getsockname())
        idle = cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        srv.accept()[0].close()
    spare = max(0, count - idle)
    return spare, "" if spare else f"first keepalive probe after {idle} s, past the {count} s idle timeout"


def probe_dead_peer(count: int) -> tuple[int, str]:
    """`count` is how many seconds an idle connection to a dead peer may go
    unnoticed: obtained is the seconds of that budget the kernel's keepalive
    timers leave spare (tcp_keepalive_time + intvl * probes, read from a new
    socket that asked for keepalive)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        idle = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        intvl = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
        cnt = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
    detect = idle + intvl * cnt
    spare = max(0, count - detect)
    return spare, "" if spare else f"a dead peer is noticed after {detect} s ({idle} + {intvl} x {cnt})"


def probe_connect_timeout(count: int) -> tuple[int, str]:
    """`count` is how many seconds a client may wait for a connection to a
    host that is down: obtained is the seconds of that budget the kernel's SYN
    retries leave spare (initial RTO 1 s, doubling: 2^(retries+1) - 1 s),
    read from a new socket's TCP_SYNCNT, which net.ipv4.tcp_syn_retries sets."""
    with socket.socket() as s:
        retries = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT)
    waits = 2 ** (retries + 1) - 1
    spare = max(0, count - waits)
    return spare, "" if spare else f"a connect to a dead host takes {waits} s ({retries} SYN retries)"


def probe_udp_burst(count: int, size: int = 1024) -> tuple[int, str]:
    """Send `count` 1 KiB datagrams over loopback to a socket that reads them
    only afterwards (as a busy syslog collector does): the datagrams that fit
    its default receive buffer (net.core.rmem_default) arrive, the rest drop."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        addr = rx.getsockname()
        payload = b"x" * size
        for _ in range(count):
            try:
                tx.sendto(payload, addr)
            except OSError:  # the sender's own buffer: try again later
                time.sleep(0.001)
        rx.setblocking(False)
        got = 0
        while True:
            try:
                rx.recv(size)
            except BlockingIOError:
                break
            got += 1
    return got, "" if got >= count else "datagrams dropped: the receive buffer was full"
