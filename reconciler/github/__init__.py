"""GitHub's REST API, the subset the workflows use: issue comments, pull reviews, issues.

An edge package: `GitHub` is a small httpx client built from the job's environment
(`GITHUB_REPOSITORY`, `GITHUB_API_URL`, `GITHUB_TOKEN`). The token goes in the
Authorization header only; it is registered with the redactor and never printed.
"""

from reconciler.github.client import GitHub, GitHubEnv, GitHubError, env_from

__all__ = ["GitHub", "GitHubEnv", "GitHubError", "env_from"]
