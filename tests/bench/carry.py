"""``python -m tests.bench.carry``: the Python packages the lent GPU machine lacks, as name==version lines.

That machine has Python 3.12 with torch, numpy and pandas, but no kserve, and it cannot reach a
package index. hack/gpu-bench.sh downloads these wheels (for Python 3.12) on this side and
installs them there. The list is what a predictor worker and the GPU benchmark import, by
distribution, at this virtualenv's versions, less what the machine's own copies should serve.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata

# What a worker serving a torch model and the GPU benchmark import (uvicorn loads its loop and
# protocol modules by name, so they are listed too).
MODULES = (
    "predictor.server.main",
    "predictor.server.model",
    "predictor.asgi.http_app",
    "predictor.server.grpc_server",
    "predictor.server.logs",
    "predictor.asgi.auth",
    "predictor.workers.worker",
    "predictor.workers.worker_server",
    "predictor.runtimes.torch_runtime",
    "prometheus_client.multiprocess",
    "uvicorn.loops.auto",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.auto",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "uvicorn.lifespan.on",
    "tests.bench.gpu",
)
# Imported only if present, and not needed: the kubernetes client tries kubernetes_validate (which
# would pull jsonschema and friends in).
OPTIONAL = ("kubernetes_validate",)
# Not carried: the machine's own (torch and its CUDA libraries, numpy and pandas built against each
# other, matplotlib, nvidia-ml-py, setuptools), this project (run from the checkout), and
# kubernetes-validate, which shares the kubernetes package's top-level name but is never needed.
NOT_CARRIED = {"torch", "triton", "numpy", "pandas", "pytz", "tzdata", "matplotlib", "setuptools", "servekit"}
NOT_CARRIED |= {"kubernetes-validate"}
NOT_CARRIED_PREFIXES = ("nvidia-", "cuda-")


def imported_distributions() -> dict[str, str]:
    """Distribution name -> installed version, for everything MODULES import."""
    sys.argv = sys.argv[:1]  # kserve.model_server parses the command line when imported
    for name in OPTIONAL:
        sys.modules[name] = None  # type: ignore[assignment]
    for module in MODULES:
        importlib.import_module(module)
    owners = metadata.packages_distributions()
    found: dict[str, str] = {}
    for top in {name.split(".")[0] for name in sys.modules}:
        for dist in owners.get(top, []):
            found[dist] = metadata.version(dist)
    return found


def wanted(dists: dict[str, str]) -> list[str]:
    """``name==version`` for the distributions to carry, sorted."""
    keep = []
    for dist, version in dists.items():
        name = dist.lower().replace("_", "-")
        if name in NOT_CARRIED or name.startswith(NOT_CARRIED_PREFIXES):
            continue
        keep.append(f"{name}=={version}")
    return sorted(keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.carry", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    print("\n".join(wanted(imported_distributions())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
