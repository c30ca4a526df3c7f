"""Ports for the servers the dev stack and the tests start: free, and outside the kernel's
ephemeral range, so a socket bound to port 0 elsewhere (a test's fake server, say) cannot
take one between its choice and its server's bind."""

import socket

from cli.devserver import _ephemeral_low, free_port


def test_free_ports_are_below_the_ephemeral_range_and_bindable() -> None:
    ports = {free_port() for _ in range(20)}

    assert all(1024 <= port < _ephemeral_low() for port in ports)
    assert len(ports) > 1  # chosen at random, so two processes rarely meet
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_chosen() -> None:
    held = []
    try:
        for _ in range(50):
            sock = socket.socket()
            sock.bind(("127.0.0.1", free_port()))
            held.append(sock)
        assert len({sock.getsockname()[1] for sock in held}) == len(held)
    finally:
        for sock in held:
            sock.close()
