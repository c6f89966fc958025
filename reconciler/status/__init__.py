"""The fleet's health matrix: each agent green, yellow or red, with the reasons."""

from reconciler.status.matrix import AgentStatus, Color, Limits, Signals, assess, summarize

__all__ = ["AgentStatus", "Color", "Limits", "Signals", "assess", "summarize"]
