"""Example models, made from data that scikit-learn ships (nothing is downloaded).

``python -m predictor.examples sklearn --out models/iris`` and ``... torch --out models/digits``
write a model directory (artifact + ``model.yaml``) that ``python -m predictor`` serves.
"""
