"""Helpers that more than one test module uses: servers, payloads, renderings, in-memory edges."""
