"""Canary rollouts for KServe InferenceServices: promote or roll back on the predictor's own metrics.

Layers, each importing only the ones above it (Flagger's scheduler / providers / routers split):

- ``spec``, ``queries``, ``analysis``, ``isvc``, ``history``, ``state``: pure. The analysis settings,
  the PromQL templates, the checks, KServe's canary fields as transformations of plain dicts,
  the history entries and the rollout state machine. No I/O, unit-tested without sockets.
- ``rollout``: one reconcile step of a rollout, written against small protocols
  (``InferenceServiceStore``, ``HistoryStore``, ``EventRecorder``, ``MetricSource``, ``WebhookSender``).
- ``prometheus``, ``webhooks``, ``kube``: the edges that implement those protocols over HTTP and the
  Kubernetes API.
- ``cli`` (``servekit-canary``, its subcommands in ``commands/``), ``display`` and ``controller``
  (kopf): the entry points.
"""
