"""Loopback ports for servers started by the tests and by bench/ (no pytest needed here)."""
import random
import socket

HOST = "127.0.0.1"


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host=HOST):
    """A loopback TCP port unused right now, chosen below the kernel's ephemeral range: the
    client sockets of other tests and programs get ephemeral ports, so they cannot take it
    before the server binds it (a port that bind(0) hands out can be)."""
    high = _ephemeral_low() - 1
    for _ in range(100):
        port = random.randint(max(1024, high - 12000), high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_accepts(port, host=HOST, timeout=0.2):
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
