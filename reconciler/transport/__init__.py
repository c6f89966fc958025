"""The edge: SSH, HTTP, metrics and git. No exception of those libraries leaves this package."""
