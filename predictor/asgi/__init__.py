"""The ASGI layers in front of KServe's app, in the order a request meets them (see http_app.py)."""
