"""The model directory's contract: the manifest (spec), the artifact's checksum, preprocessing."""
