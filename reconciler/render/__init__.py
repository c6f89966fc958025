"""Canonical rendering: the exact bytes a box's config file holds."""

from reconciler.render.canonical import RENDERER_VERSION, render_payload, sha256_hex

__all__ = ["RENDERER_VERSION", "render_payload", "sha256_hex"]
