"""Backup and restore of a namespace's servekit objects: the Python half of hack/backup.sh and hack/restore.sh.

Layers, each importing only the ones above it:

- ``objects``, ``helm_release``: pure. What a backed-up object keeps and how a live one is patched
  back to it; Helm's release records decoded without Helm.
- ``models``, ``archive``: model manifests read through a local mirror of the storage; the backup
  folder's layout, written and read back with every file checked.
- ``export``, ``restore``, ``helm_restore``: a backup made from kubectl's answers; what a restore
  writes and needs; Helm releases installed again with Helm's Go SDK.
- ``cli`` (``python -m predictor.backup``): one command per step of the scripts.
"""
