"""Schemathesis fuzzes every route of /api/openapi.json against a real gateway process with a real
simulator behind it: no answer is a 5xx, and every 4xx is in the error shape the document gives.

Bounded to about two minutes: each operation gets FUZZ_EXAMPLES cases or its share of FUZZ_SECONDS,
whichever ends first (GATEWAY_FUZZ_EXAMPLES / GATEWAY_FUZZ_SECONDS change them for a longer hunt).
Worker and webhook URLs the fuzzer draws are replaced by loopback addresses where nothing listens: a
fuzzer must never make the gateway reach another host. Waits (POST /api/prompt with wait, the status
long poll) are capped at one second by the gateway's own max_wait_seconds, so a drawn wait=600 costs a
second at most.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from gateway.openapi import openapi_document
from tests.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
FUZZ_EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "400"))
FUZZ_SECONDS = float(os.environ.get("GATEWAY_FUZZ_SECONDS", "120"))  # for all operations together
LOOPBACK_URL_FIELDS = ("url", "webhook")


def _wait(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not answer {url}")


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory):
    """A gateway process with one simulator process registered; yields (base URL, OpenAPI document)."""
    work = tmp_path_factory.mktemp("fuzz")
    sim_port, gw_port = free_port(), free_port()
    env = {**os.environ, "GATEWAY_DATABASE": "sqlite", "GATEWAY_HEALTH_INTERVAL": "0.5",
           "WORKER_REQUEST_TIMEOUT": "3", "GATEWAY_LOG_LEVEL": "WARNING", "GATEWAY_MAX_WAIT_SECONDS": "1"}
    log = open(work / "processes.log", "wb")
    sim = subprocess.Popen([sys.executable, "-m", "tests.fake_comfy", "--port", str(sim_port), "--log-level",
                            "WARNING"], cwd=ROOT, stdout=log, stderr=log)
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "--no-tray", "--host", "127.0.0.1", "--port",
                                str(gw_port), "--data-dir", str(work / "data")], cwd=ROOT, env=env, stdout=log,
                               stderr=log)
    base = f"http://127.0.0.1:{gw_port}"
    try:
        _wait(f"http://127.0.0.1:{sim_port}/system_stats", sim, "simulator")
        _wait(base + "/healthz", gateway, "gateway")
        answer = requests.post(base + "/api/workers", json={"url": f"http://127.0.0.1:{sim_port}", "name": "sim"})
        assert answer.status_code == 201, answer.text
        yield base, requests.get(base + "/api/openapi.json").json()
    finally:
        for proc in (gateway, sim):
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


DOCUMENT = openapi_document("fuzz")  # the same table the server answers with (checked in the test)
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [(method.upper(), path) for path, methods in DOCUMENT["paths"].items() for method in methods]
CLOSED_PORT = free_port()  # nothing listens there
STATUSES: collections.Counter = collections.Counter()  # (method, path, status) seen, for the summary test


def _keep_on_loopback(body):
    """Worker and webhook URLs drawn by the fuzzer point at a closed loopback port instead."""
    if isinstance(body, dict):
        for field in LOOPBACK_URL_FIELDS:
            if field in body and isinstance(body[field], str):
                body[field] = f"http://127.0.0.1:{CLOSED_PORT}/{body[field][:20]}"
    return body


def _documented_failure(document: dict, method: str, path: str) -> dict:
    return document["paths"][path][method.lower()]["responses"]["4XX"]


@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_5xx_and_every_4xx_in_the_documented_shape(method, path, fuzz_target):
    base, document = fuzz_target
    assert document["paths"] == DOCUMENT["paths"], "the server documents what the table says"

    until = time.monotonic() + FUZZ_SECONDS / len(OPERATIONS)

    @given(case=SCHEMA[path][method].as_strategy())
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate], derandomize=True, database=None)
    def fuzz(case):
        if time.monotonic() < until:  # past its time share, the remaining cases are not sent
            _check(case, base, document)

    fuzz()


def _check(case, base: str, document: dict) -> None:
    case.body = _keep_on_loopback(case.body)
    response = case.call(base_url=base, timeout=30)
    status = response.status_code
    STATUSES[(case.method, case.path, status)] += 1
    what = f"{case.method} {case.formatted_path} -> {status}: {response.text[:300]}"
    assert status < 500, what
    if status < 400:
        return
    failure = _documented_failure(document, case.method, case.path)
    if not response.content:
        assert failure.get("x-empty-body"), f"empty error body on a route that documents one: {what}"
        return
    if failure.get("x-text-body") and not response.headers.get("Content-Type", "").startswith("application/json"):
        assert response.text.strip() and len(response.text) < 1000, what  # a short message, as ComfyUI writes
        return
    body = json.loads(response.content)
    schema_ref = failure["content"]["application/json"]["schema"]
    jsonschema_rs.validate({**schema_ref, "components": document["components"]}, body)


def test_the_fuzzer_reached_every_operation_and_its_errors(fuzz_target):
    """Runs after the fuzzing above: each operation was called, and many answers were 4xx (checked)."""
    called = {(method, path) for method, path, _ in STATUSES}
    assert called == set(OPERATIONS), set(OPERATIONS) - called
    assert sum(n for (_, _, status), n in STATUSES.items() if 400 <= status < 500) > len(OPERATIONS)
