"""The inference protocols: v2 (and v1) bodies to tensors and back, input checks, errors as statuses."""
