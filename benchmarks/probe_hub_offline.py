"""How long ``vitzoo.load("hf-hub:...")`` takes to fail without a network and without ``HF_HUB_OFFLINE``, and how
many requests it makes (docs/reliability.md, "Offline, with or without HF_HUB_OFFLINE").

    PYTHONPATH=. flock /tmp/vz-bench.lock python benchmarks/probe_hub_offline.py [hf-hub:org/name]

The endpoint is ``http://127.0.0.1:9`` (nothing listens: connections are refused at once), ``HF_HOME`` a fresh
temporary folder; every request is counted at the HTTP client (huggingface_hub's own once-a-day registry request,
``/api/agent-harnesses``, is listed but is not vitzoo's).
"""

import os
import sys
import tempfile
import time

os.environ.update(HF_HOME=tempfile.mkdtemp(), HF_ENDPOINT="http://127.0.0.1:9")
os.environ.pop("HF_HUB_OFFLINE", None)

import httpx2  # noqa: E402  (after the environment: huggingface_hub reads it at import)

calls = []
_send = httpx2.Client.send


def _counted(self, request, **kwargs):
    calls.append(f"{request.method} {request.url}")
    return _send(self, request, **kwargs)


httpx2.Client.send = _counted

import vitzoo  # noqa: E402

name = sys.argv[1] if len(sys.argv) > 1 else "hf-hub:someone/some-model"
start = time.perf_counter()
try:
    vitzoo.load(name)
except Exception as exc:  # noqa: BLE001  (the point is to print whatever it raised)
    print(f"{type(exc).__name__}: {exc}")
repo = name.removeprefix("hf-hub:").split("@")[0]
print(f"{time.perf_counter() - start:.1f} s, {sum(repo in c for c in calls)} requests to {repo} ({len(calls)} in all)")
for call in calls:
    print(" ", call)
