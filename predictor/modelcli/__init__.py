"""``servekit-model``: turn a trained model file into a servable model directory, and check one.

Each subcommand is a module with ``add_parser(subparsers)`` listed in ``main.SUBCOMMANDS``; the
module's parser sets ``run`` (``args -> exit code``). Format detection and the manifest drafted
from a model's signature are pure (``detect``, ``signature``); the commands are the I/O edge.
"""
