"""Alert rules as code: alerts/*.yaml compiled to Prometheus rule files and alertmanager.yml.

Pure core. `compile_alerts(repo)` gives a `CompiledAlerts`: the rule files by file
name (recording rules for the derived metrics, one alerting group per alerts file,
each group's first rule `reconciler_group_info{reconciler_group_hash=...}` carrying its
content hash), each group's content hash, and
alertmanager.yml with secret placeholders. `resolve_alertmanager` puts the secret
values in, only when shipping (the caller writes that file 0600). Bytes are
deterministic: the same repo compiles to the same bytes.
"""

from reconciler.alerts.compile import (
    GROUP_HASH_LABEL,
    GROUP_INFO,
    GROUP_LABEL,
    GROUP_PREFIX,
    ROUTE_LABEL,
    CompiledAlerts,
    compile_alerts,
)
from reconciler.alerts.route import MissingSecretError, resolve_alertmanager, secret_placeholder

__all__ = [
    "GROUP_HASH_LABEL",
    "GROUP_INFO",
    "GROUP_LABEL",
    "GROUP_PREFIX",
    "ROUTE_LABEL",
    "CompiledAlerts",
    "MissingSecretError",
    "compile_alerts",
    "resolve_alertmanager",
    "secret_placeholder",
]
