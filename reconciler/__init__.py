"""reconciler: a GitOps fleet-config reconciler and rollout engine for AI-agent boxes."""

__version__ = "0.1.0"
