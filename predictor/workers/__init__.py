"""``--workers N``: a supervisor and N server processes sharing the pod's ports."""
