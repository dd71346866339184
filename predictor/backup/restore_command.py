"""``python -m predictor.backup restore``: the whole of hack/restore.sh (the script only finds a
Python and hands over, with its name for the messages).

The command line is read as the hack/ scripts read theirs (flags in any order, a usage error
names the flag and exits 2), and every cluster step is the kubectl call the script made, so the
messages, exit statuses and kubectl calls stay what the script's users and tests know.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from predictor.backup import archive, helm_restore, models, objects, restore
from predictor.backup.isvc_ready import IsvcReadiness
from predictor.backup.kubectl import Kubectl, RestoreFailed, last_line
from predictor.backup.output import REPORTED_ERRORS, Output, summarise

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
USAGE = "Usage: hack/restore.sh BACKUP [-n NAMESPACE] [options]"
HELP = f"""\
Restore a backup made by hack/backup.sh into a namespace of this or another cluster: its Helm
releases are installed again from the chart and values in the backup (Helm's Go SDK, no helm
binary), then every backed-up InferenceService, canary history ConfigMap, CanaryAnalysis and
ServiceAccount is created, or patched back to its backed-up content where it exists. A second
run of the same restore changes nothing. docs/backup.md has the details.

{USAGE}

  BACKUP                    the backup: the folder or the .tar.gz (.tgz) hack/backup.sh wrote
  -n, --namespace NS        where to restore (default: the namespace the backup was taken from);
                            created, with the source namespace's labels, when it does not exist
  --force                   restore into a namespace that already holds InferenceServices,
                            CanaryAnalyses, canary history or Helm releases: the backed-up
                            ones replace theirs (a re-run of the same restore needs no --force)
  --model-store URI_PREFIX=DIR | s3://BUCKET[/PREFIX]
                            first check that the storage still holds the backed-up models: the
                            model.yaml under DIR (a local mount or copy of URI_PREFIX), or in
                            the bucket over the S3 API (as in hack/backup.sh), must name the
                            backed-up sha256; repeatable; a difference stops the restore
  --wait SECONDS            then wait up to SECONDS for each InferenceService to be Ready
  --context CTX             kubectl context (default: the current one)
  --dry-run                 check the backup and the cluster and print what would be done
  -h, --help                show this help

Exit status: 0 restored, 1 a bad backup or a cluster that cannot take it (missing CRDs, a
namespace that is not empty, an API error), 2 bad usage. Needs kubectl, tar for an archive,
and helm-python-sdk for Helm releases."""
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# The ConfigMaps servekit-canary keeps each InferenceService's history in (docs/canary.md).
HISTORY_SELECTOR = "app.kubernetes.io/managed-by=servekit-canary,servekit.dev/inferenceservice"
# The kinds a restore writes, looked for in a target namespace that is not new.
RESTORED_RESOURCES = ("inferenceservices.serving.kserve.io", "canaryanalyses.servekit.dev")
OCCUPANTS_SHOWN = 10
KUBECTL_HINT = "install kubectl >= 1.29 (https://kubernetes.io/docs/tasks/tools/)"
TAR_HINT = "install it and put it on PATH"


class UsageError(Exception):
    """A bad command line: exit status 2."""


@dataclass
class RestoreArgs:
    backup: str = ""
    namespace: str = ""
    context: str = ""
    force: bool = False
    dry_run: bool = False
    wait_seconds: int = 0
    model_stores: list[str] = field(default_factory=list)
    help: bool = False


def parse_args(argv: Sequence[str]) -> RestoreArgs:
    """As the script parsed them: a flag's value is the next word, unless it is empty or a flag."""
    parsed, words, wait = RestoreArgs(), list(argv), "0"
    while words:
        word = words.pop(0)
        if word in ("-n", "--namespace", "--model-store", "--wait", "--context"):
            if not words or not words[0] or words[0].startswith("--"):
                raise UsageError(f"{word} needs a value")
            value = words.pop(0)
            if word in ("-n", "--namespace"):
                parsed.namespace = value
            elif word == "--model-store":
                parsed.model_stores.append(value)
            elif word == "--wait":
                wait = value
            else:
                parsed.context = value
        elif word in ("--force", "--dry-run"):
            setattr(parsed, word[2:].replace("-", "_"), True)
        elif word in ("-h", "--help"):
            parsed.help = True
            return parsed
        elif word.startswith("-"):
            raise UsageError(f"unknown option: {word}")
        elif parsed.backup:
            raise UsageError(f"unexpected argument '{word}': give one BACKUP")
        else:
            parsed.backup = word
    check_args(parsed, wait)
    return parsed


def check_args(parsed: RestoreArgs, wait: str) -> None:
    if not parsed.backup:
        raise UsageError("BACKUP is required: the folder or .tar.gz hack/backup.sh wrote")
    if not Path(parsed.backup).exists():
        raise UsageError(f"BACKUP {parsed.backup} does not exist")
    if parsed.namespace and not DNS_LABEL.fullmatch(parsed.namespace):
        raise UsageError(
            f"--namespace '{parsed.namespace}' is not a namespace name (lower-case letters, digits and '-', at most 63)"
        )
    # No leading 0: the script's bash read 08 as a bad octal number; one meaning for both.
    if not re.fullmatch(r"0|[1-9][0-9]*", wait):
        raise UsageError(f"--wait '{wait}' is not a whole number of seconds (digits, no leading 0)")
    parsed.wait_seconds = int(wait)
    for store in parsed.model_stores:
        check_model_store(store)


def check_model_store(text: str) -> None:
    """URI_PREFIX=DIR with DIR a folder, or s3://BUCKET[/PREFIX] (read over the S3 API)."""
    if re.fullmatch(r"s3://[^=/]+(/[^=]*)?", text):
        return
    if not re.fullmatch(r"[a-z0-9+.-]+://[^=]*=.+", text):
        raise UsageError(
            f"--model-store '{text}' is not URI_PREFIX=DIR (e.g. s3://models=/mnt/models) "
            "or s3://BUCKET[/PREFIX] (e.g. s3://models)"
        )
    folder = text.split("=", 1)[1]
    if not Path(folder).is_dir():
        raise UsageError(f"--model-store '{text}': {folder} is not a directory")


class Restore:
    """One restore: the steps of hack/restore.sh, in its order, with its messages."""

    def __init__(self, args: RestoreArgs, prog: str, workdir: Path) -> None:
        self.args, self.prog, self.workdir = args, prog, workdir
        self.kube = Kubectl(args.context)
        self.namespace = args.namespace
        self.out = Output(prog)
        self.say, self.warn = self.out.say, self.out.warn

    def unpack(self) -> Path:
        """The backup's folder: BACKUP itself, or where its archive unpacks (the index at the top
        or one folder down, as hack/backup.sh packs it)."""
        backup = self.args.backup
        if Path(backup).is_dir():
            return Path(backup)
        require_tool("tar", TAR_HINT, self.prog)
        unpacked = self.workdir / "unpacked"
        unpacked.mkdir()
        result = subprocess.run(["tar", "-xzf", backup, "-C", str(unpacked)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RestoreFailed(f"cannot unpack {backup}: it is not a readable .tar.gz ({last_line(result.stderr)})")
        found = sorted({p.parent for p in [*unpacked.glob("index.yaml"), *unpacked.glob("*/index.yaml")]})
        if len(found) != 1:
            raise RestoreFailed(
                f"{backup} holds {len(found)} index.yaml files, expected 1: it is not an archive hack/backup.sh wrote"
            )
        return found[0]

    def require_cluster(self) -> None:
        """Fail early, with the context named, when the cluster does not answer."""
        context = self.args.context
        if not context:
            current = subprocess.run(["kubectl", "config", "current-context"], capture_output=True, text=True)
            context = current.stdout.strip() if current.returncode == 0 else "(none)"
        if not self.kube.ok("version", "--request-timeout=10s"):
            raise RestoreFailed(
                f"the cluster of kubectl context '{context}' does not answer: create one with hack/kind-up.sh "
                "or pick one with --context"
            )
        self.say(f"cluster: kubectl context '{context}'")

    def check_apis(self, backup: archive.Backup) -> None:
        """Every custom resource the backup holds must be served by the target."""
        missing = []
        for group_version, plural in restore.required_apis(backup):
            served = self.kube("get", "--raw", f"/apis/{group_version}")
            if served.returncode != 0 or not serves(served.stdout, plural):
                missing.append(f"{plural}.{group_version}")
        if missing:
            raise RestoreFailed(
                f"the target cluster does not serve {' '.join(missing)}: install their CRDs first (InferenceService: "
                "KServe >= 0.20, hack/install-kserve.sh; CanaryAnalysis: kubectl apply -k manifests/crd)"
            )
        self.say("the target serves every kind in the backup")

    def occupants(self) -> list[str]:
        """What a restore would write over: the kinds it restores, already in the namespace."""
        ns = self.namespace
        taken = []
        for resource in RESTORED_RESOURCES:
            taken += self.kube("-n", ns, "get", resource, "-o", "name").stdout.split()
        taken += self.kube.output("-n", ns, "get", "configmaps", "-l", HISTORY_SELECTOR, "-o", "name").split()
        taken += self.kube.output("-n", ns, "get", "secrets", "-l", "owner=helm", "-o", "name").split()
        return taken

    def check_namespace(self, backup_id: str) -> bool:
        """Whether the namespace exists; stops on one being deleted, or one that holds objects of
        another restore or install, unless --force."""
        ns = self.namespace
        jsonpath = r"jsonpath={.status.phase} {.metadata.annotations.servekit\.dev/restored-from}"
        state = self.kube("get", "namespace", ns, "-o", jsonpath)
        if state.returncode != 0:
            if "(NotFound)" not in state.stderr:
                raise RestoreFailed(f"reading namespace {ns}: {last_line(state.stderr)}")
            self.say(f"namespace {ns} does not exist: it will be created")
            return False
        phase, _, marker = state.stdout.partition(" ")
        if phase == "Terminating":
            raise RestoreFailed(
                f"namespace {ns} is being deleted: wait until it is gone "
                f"(kubectl wait --for=delete namespace/{ns}) or pick another"
            )
        if marker.strip() == backup_id:
            self.say(f"namespace {ns} holds an earlier run of this restore: going on from there")
            return True
        taken = self.occupants()
        if taken and not self.args.force:
            shown = " ".join(taken[:OCCUPANTS_SHOWN])
            if len(taken) > OCCUPANTS_SHOWN:
                shown += f" and {len(taken) - OCCUPANTS_SHOWN} more"
            raise RestoreFailed(
                f"namespace {ns} is not empty ({shown}): restore into a new namespace with -n, "
                "or pass --force to replace these with the backed-up objects"
            )
        return True

    def prepare_namespace(self, backup: archive.Backup, exists: bool) -> None:
        ns = self.namespace
        if exists:
            annotation = f"{restore.RESTORED_FROM}={backup.id}"
            self.kube.output("annotate", "--overwrite", "namespace", ns, annotation)
            return
        manifest = json.dumps(restore.namespace_manifest(backup, ns))
        created = self.kube("create", "-f", "-", stdin=manifest)
        if created.returncode != 0:
            raise RestoreFailed(f"creating namespace {ns}: {last_line(created.stderr)}")
        self.say(f"created namespace {ns}")

    def restore_object(self, index: int, obj: dict[str, object]) -> None:
        """Create it, or patch it to the backed-up content."""
        kind, name = objects.kind_of(obj), objects.required_name(obj)
        ns, what = self.namespace, f"{kind.resource.split('.', 1)[0]}/{name}"
        wanted = self.workdir / f"{index:03d}-{kind.folder}-{name}.json"
        wanted.write_text(json.dumps(obj, indent=1))
        live = self.kube("-n", ns, "get", kind.resource, name, "-o", "json")
        if live.returncode == 0:
            ops = objects.patch_ops(obj, json.loads(live.stdout))
            if not ops:
                self.say(f"{what}: unchanged")
            elif self.args.dry_run:
                self.say(f"{what}: would be patched to the backed-up content")
            else:
                patch = self.workdir / "patch.json"
                patch.write_text(json.dumps(ops))
                self.kube.output("-n", ns, "patch", kind.resource, name, "--type=json", f"--patch-file={patch}")
                self.say(f"{what}: patched to the backed-up content")
        elif "(NotFound)" not in live.stderr:
            raise RestoreFailed(f"reading {what} in {ns}: {last_line(live.stderr)}")
        elif self.args.dry_run:
            self.say(f"{what}: would be created")
        else:
            self.kube.output("create", "-f", str(wanted))
            self.say(f"{what}: created")

    def check_models(self, backup: archive.Backup) -> None:
        """The storage must still hold the backed-up models (their model.yaml names the sha256)."""
        stores = [models.ModelStore.parse(text) for text in self.args.model_stores]
        checked, problems = models.compare(backup.models, stores)
        if problems:
            listed = "\n  ".join(problems)
            raise models.ModelError(f"the model store holds other models than the backup recorded:\n  {listed}")
        self.say(f"models: {checked} of {len(backup.models)} in the model store, each with the backed-up sha256")

    def run(self) -> int:
        args = self.args
        folder = self.unpack()
        backup = archive.load(folder)
        summarise(backup, self.out)  # as `verify` does
        self.namespace = self.namespace or str(backup.source.get("namespace", ""))
        if args.model_stores:
            self.check_models(backup)
        self.require_cluster()
        self.check_apis(backup)
        exists = self.check_namespace(backup.id)
        if not args.dry_run:
            self.prepare_namespace(backup, exists)
        helm_restore.restore_releases(backup, self.namespace, args.context, args.dry_run, self.say)
        isvcs = []
        for index, obj in enumerate(restore.objects_in_order(backup, self.namespace)):
            self.restore_object(index, obj)
            if objects.kind_of(obj).resource.startswith("inferenceservices."):
                isvcs.append(objects.required_name(obj))
        if args.dry_run:
            self.say("dry run: nothing written")
            return EXIT_OK
        if args.wait_seconds > 0:
            readiness = IsvcReadiness(self.kube, self.namespace, self.say, self.warn)
            for name in isvcs:
                if not readiness.wait_ready(name, args.wait_seconds):
                    readiness.show_diagnostics(name)
                    raise RestoreFailed(
                        f"inferenceservice {self.namespace}/{name} is not Ready after {args.wait_seconds}s"
                    )
        self.say(f"restored backup {backup.id} into namespace {self.namespace}")
        return EXIT_OK


def serves(discovery: str, plural: str) -> bool:
    """Whether an API group version's discovery document lists the resource PLURAL."""
    try:
        resources = json.loads(discovery).get("resources") or []
    except (ValueError, AttributeError):
        return False
    return any(isinstance(r, dict) and r.get("name") == plural for r in resources)


def require_tool(tool: str, hint: str, prog: str) -> None:
    if shutil.which(tool) is None:
        print(f"{prog}: error: {tool} is required: {hint}", file=sys.stderr)
        raise SystemExit(EXIT_FAILED)


RESTORE_ERRORS: tuple[type[Exception], ...] = (RestoreFailed, *REPORTED_ERRORS)


def main(argv: Sequence[str], prog: str = "restore") -> int:
    """`python -m predictor.backup --prog NAME restore ARGS` (hack/restore.sh)."""
    try:
        args = parse_args(argv)
    except UsageError as exc:
        print(f"{prog}: error: {exc}\n{USAGE}\nRun '{prog} --help' for the options.", file=sys.stderr)
        return EXIT_USAGE
    if args.help:
        print(HELP)
        return EXIT_OK
    require_tool("kubectl", KUBECTL_HINT, prog)
    with tempfile.TemporaryDirectory() as workdir:
        try:
            return Restore(args, prog, Path(workdir)).run()
        except RESTORE_ERRORS as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return EXIT_FAILED
