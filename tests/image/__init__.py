"""Tests of hack/image/: the image builds, their cache keys, exports and the images themselves."""
