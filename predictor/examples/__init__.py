"""Example models, made from data that scikit-learn ships or from seeded random weights (nothing
is downloaded).

``python -m predictor.examples sklearn --out models/iris``, ``... torch --out models/digits`` and
``... transformer --out models/textclf`` write a model directory (artifact + ``model.yaml``) that
``python -m predictor`` serves; ``onnx``, ``xgboost`` and ``lightgbm`` train a model, save it in
its framework's own format and pack it with ``servekit-model pack`` (``formats.py``).
"""
