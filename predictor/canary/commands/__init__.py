"""The subcommands of ``servekit-canary`` (predictor/canary/cli.py builds the parser and dispatches):

- ``output``: the program name, exit codes, usage errors and ``-o text|json`` output they share;
- ``analysis_flags``: ``run``'s analysis flags and the AnalysisSpec they make;
- ``show``: ``status`` and ``history``;
- ``change``: ``start``, ``set-weight``, ``promote``, ``rollback``, ``restore``;
- ``run``: the analysis loop;
- ``release_settings`` and ``release``: start a canary and see it to its verdict (what
  hack/model-release.sh runs): the command line and checked settings, then the steps.
"""
