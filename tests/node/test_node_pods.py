"""Smoke tests of the real node: locally built images run, memory limits OOM-kill for real, and
pods reach host test services on the bridge address (and have no route anywhere else)."""

from __future__ import annotations

import ipaddress
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytestmark = pytest.mark.node

RunPod = Callable[..., tuple[Any, str]]


def _terminated(pod: Any) -> Any:
    (status,) = pod.status.container_statuses
    assert status.state.terminated is not None, status.state
    return status.state.terminated


def test_node_extractor_image_runs_help(run_pod: RunPod, extractor_image: str) -> None:
    pod, logs = run_pod("qd-extract-help", args=["--help"])

    assert pod.status.phase == "Succeeded", (pod.status, logs)
    terminated = _terminated(pod)
    assert terminated.exit_code == 0
    assert terminated.reason == "Completed"
    assert "usage: qd-extract" in logs
    assert pod.spec.containers[0].image == extractor_image


def test_node_memory_limit_is_a_real_oom_kill(run_pod: RunPod) -> None:
    pod, logs = run_pod("qd-oom", command=["python3", "-c", "x = bytearray(200*1024*1024)"],
                        memory_limit="64Mi")

    assert pod.status.phase == "Failed", (pod.status, logs)
    terminated = _terminated(pod)
    assert terminated.reason == "OOMKilled", terminated
    assert terminated.exit_code == 137


class _Probe:
    """A one-shot HTTP server on the bridge address that answers a random token."""

    def __init__(self, host: str) -> None:
        self.token = uuid.uuid4().hex
        self.clients: list[str] = []
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                probe.clients.append(self.client_address[0])
                body = probe.token.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture()
def probe(node_ip: str) -> Iterator[_Probe]:
    try:
        server = _Probe(node_ip)
    except OSError as exc:
        pytest.fail(f"cannot bind a test server on the node IP {node_ip} (is cni0 up? "
                    f"`hack/cluster/node.sh status`): {exc}", pytrace=False)
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_node_pod_reaches_host_service_on_bridge(run_pod: RunPod, probe: _Probe, node_ip: str) -> None:
    script = (
        "import urllib.request\n"
        f"print(urllib.request.urlopen('http://{node_ip}:{probe.port}/probe', timeout=30).read().decode())\n"
        "routes = [line.split() for line in open('/proc/net/route').read().splitlines()[1:]]\n"
        "print('default-route' if any(r[1] == '00000000' for r in routes) else 'no-default-route')\n"
    )
    pod, logs = run_pod("qd-bridge", command=["python3", "-c", script])

    assert pod.status.phase == "Succeeded", (pod.status, logs)
    assert probe.token in logs
    # The request came from the pod's own address on the bridge network ...
    bridge_net = ipaddress.ip_network(f"{node_ip}/24", strict=False)
    assert probe.clients, "the test server saw no request"
    assert ipaddress.ip_address(probe.clients[0]) in bridge_net
    assert probe.clients[0] == pod.status.pod_ip
    # ... and pods have no default route: the bridge is the only network they can reach.
    assert "no-default-route" in logs
