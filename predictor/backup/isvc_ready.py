"""Waiting for a restored InferenceService to serve (hack/restore.sh --wait), and what to show
when it does not: the same checks as hack/lib/isvc.sh, over kubectl.

Ready (and CanaryPredictorReady with canaries); in Standard mode also exactly the predictor
Deployments the spec asks for, rolled out. Not `kubectl wait`: it compares
status.observedGeneration with the InferenceService's generation, and KServe writes its
Deployment's there (docs/controlplane.md), so after a patch it would never end.
"""

from __future__ import annotations

from collections.abc import Callable

from predictor.backup.kubectl import Kubectl, stderr_block, wait_until


class IsvcReadiness:
    def __init__(self, kube: Kubectl, namespace: str, say: Callable[[str], None], warn: Callable[[str], None]) -> None:
        self.kube, self.namespace, self.say, self.warn = kube, namespace, say, warn

    def _jsonpath(self, name: str, path: str) -> str:
        return self.kube("-n", self.namespace, "get", "inferenceservice", name, "-o", f"jsonpath={path}").stdout

    def predictor_deployments(self, name: str) -> list[str]:
        """The Deployments KServe (Standard mode) runs for it: the stable predictor and one per canary."""
        stable = self._jsonpath(name, "{.spec.predictor.name}")
        canaries = self._jsonpath(name, "{.spec.canary[*].predictor.name}").split()
        return [f"{name}-{stable}-predictor" if stable else f"{name}-predictor"] + [
            f"{name}-{canary}-predictor" for canary in canaries
        ]

    def current_deployments(self, name: str) -> list[str]:
        listed = self.kube(
            "-n", self.namespace, "get", "deployments", "-l",
            f"serving.kserve.io/inferenceservice={name},component=predictor",
            "-o", 'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}',
        ).stdout  # fmt: skip
        return sorted(listed.split())

    def condition_true(self, name: str, condition: str) -> bool:
        return self._jsonpath(name, f'{{.status.conditions[?(@.type=="{condition}")].status}}') == "True"

    def wait_ready(self, name: str, timeout: int) -> bool:
        namespace = self.namespace
        mode = self._jsonpath(name, r"{.metadata.annotations.serving\.kserve\.io/deploymentMode}")
        self.say(f"waiting for inferenceservice {namespace}/{name} to be Ready")
        if mode not in ("Knative", "Serverless"):
            if not wait_until(
                timeout,
                f"the predictor Deployments of {name}",
                lambda: sorted(self.predictor_deployments(name)) == self.current_deployments(name),
                self.warn,
            ):
                return False
            for deployment in self.predictor_deployments(name):
                self.say(f"waiting for deployment {namespace}/{deployment}")
                status = f"deployment/{deployment}"
                if not self.kube.ok("-n", namespace, "rollout", "status", status, f"--timeout={timeout}s"):
                    return False
        if not wait_until(timeout, f"{name} to be Ready", lambda: self.condition_true(name, "Ready"), self.warn):
            return False
        if self._jsonpath(name, "{.spec.canary[*].predictor.name}"):
            canary_ready = lambda: self.condition_true(name, "CanaryPredictorReady")  # noqa: E731
            if not wait_until(timeout, f"the canary of {name}", canary_ready, self.warn):
                return False
        self.say(f"inferenceservice {namespace}/{name} is Ready")
        return True

    def show_diagnostics(self, name: str) -> None:
        """What a person needs to see when an InferenceService does not come up (stderr). Never fails."""
        namespace, kube = self.namespace, self.kube

        def both(*args: str) -> str:
            result = kube(*args)
            return result.stdout + result.stderr

        status = both("-n", namespace, "get", "inferenceservice", name, "-o", "yaml")
        lines = status.splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("status:")), len(lines))
        parts = [f"----- inferenceservice {namespace}/{name}", *lines[start:]]
        parts += [f"----- pods in {namespace}", both("-n", namespace, "get", "pods", "-o", "wide").rstrip("\n")]
        events = both("-n", namespace, "get", "events", "--sort-by=.lastTimestamp").splitlines()[-25:]
        parts += [f"----- recent events in {namespace}", *events]
        selector = f"serving.kserve.io/inferenceservice={name}"
        for pod in kube("-n", namespace, "get", "pods", "-l", selector, "-o", "name").stdout.split():
            parts += [f"----- logs of {pod}", both("-n", namespace, "logs", pod, "--all-containers", "--tail=40")]
        parts += [
            "----- KServe controller",
            both("-n", "kserve", "logs", "deployment/kserve-controller-manager", "--tail=30"),
        ]
        stderr_block("\n".join(part.rstrip("\n") for part in parts))
