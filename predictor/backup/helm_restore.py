"""Helm releases installed again from the chart and values a backup keeps, with Helm's own Go SDK
(helm-python-sdk), so no helm binary is needed.

Why a reinstall and not the old release record: a record belongs to the namespace its chart was
rendered for (every object's namespace, the URLs in its notes and hooks), and a `helm upgrade` of a
record moved elsewhere would delete what it lists in the old namespace. A reinstall renders the
same chart with the same values for the target namespace, makes Helm the owner of every object the
chart makes (ServiceAccount, controller, NetworkPolicy, the CRD in crds/ ...), and leaves a release
`helm status`, `upgrade`, `rollback` and `uninstall` work on. Its revision starts again at 1; the
earlier revisions are listed in the backup's release.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from predictor.backup.archive import Backup

Say = Callable[[str], None]
INSTALL_HINT = "pip install 'servekit[backup]' (or helm-python-sdk) into the Python that runs this"


class HelmRestoreError(RuntimeError):
    """A release that could not be installed, or no Helm SDK to install it with."""


def require_sdk() -> Any:
    """The Helm SDK module; a restore with releases checks this before it writes anything."""
    try:
        import helm_python
    except ImportError as exc:
        raise HelmRestoreError(f"restoring Helm releases needs helm-python-sdk ({exc}): {INSTALL_HINT}") from None
    return helm_python


def _deployed(config: Any, sdk: Any, name: str) -> dict[str, Any] | None:
    try:
        status: dict[str, Any] = config.status(name)
    except sdk.HelmNotFoundError:
        return None
    return status


def _restore_one(config: Any, sdk: Any, backup: Backup, entry: dict[str, Any], dry_run: bool, say: Say) -> None:
    name = str(entry["name"])
    folder = backup.release_path(entry)
    values = yaml.safe_load((folder / "values.yaml").read_text(encoding="utf-8")) or {}
    version = str(yaml.safe_load((folder / "chart" / "Chart.yaml").read_text(encoding="utf-8"))["version"])
    current = _deployed(config, sdk, name)
    if (
        current is not None
        and current.get("status") == "deployed"
        and current.get("chart_version") == version
        and config.get_values(name) == values
    ):
        say(f"Helm release {name}: unchanged (deployed with the backed-up chart {version} and values)")
        return
    action = "upgrade" if current is not None else "install"
    chart_name = entry.get("chart", "chart")
    if dry_run:
        say(f"Helm release {name}: would {action} {chart_name} {version} with the backed-up values")
        return
    description = f"restored from servekit backup {backup.id}"
    with sdk.Chart.load(folder / "chart") as chart:
        if current is None:
            done = config.install(chart, name, values, description=description)
        else:
            done = config.upgrade(chart, name, values, description=description)
    revision, status = done.get("revision"), done.get("status")
    say(f"Helm release {name}: {action}ed {chart_name} {version} (revision {revision}, {status})")


def restore_releases(backup: Backup, namespace: str, context: str | None, dry_run: bool, say: Say) -> None:
    """Install (or bring back to the backed-up chart and values) every release in the backup."""
    if not backup.releases:
        return
    sdk = require_sdk()
    with sdk.Config(kube_context=context or None, namespace=namespace) as config:
        for entry in backup.releases:
            try:
                _restore_one(config, sdk, backup, entry, dry_run, say)
            except sdk.HelmError as exc:
                raise HelmRestoreError(f"Helm release {entry['name']}: {exc}") from None
