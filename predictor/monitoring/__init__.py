"""Watching the model in production: what it predicts, whether its inputs drift, how right it is.

* predictions.py: ``servekit_predictions_total{model, output, label}`` and histograms of
  probabilities and regression outputs, counted per model call with numpy.
* reference.py, drift.py: each input feature's reference distribution (``profile``) and the
  population stability index of a recent window against it, computed off the request path.
* answers.py, feedback.py, feedback_app.py: recent answers kept for a while, joined with the
  truth a client posts to ``/v2/models/<m>/feedback``, and the live accuracy over a window.
* monitor.py: the one object the server holds; profile_command.py: the ``profile`` command.
"""
