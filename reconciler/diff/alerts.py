"""The alerts section of the fleet diff: alert rules added, removed or changed, compiled.

Pull-request mode compiles both sides (reconciler/alerts) and compares each alert by
name: its compiled PromQL and the rest of its rule (for, severity, route, summary,
runbook, ...). Live mode compares the repo's compiled expressions with the ones a
Prometheus has loaded, when the caller read them (name -> PromQL).
"""

from __future__ import annotations

from collections.abc import Mapping

from reconciler.alerts import compile_alerts
from reconciler.alerts.compile import AlertSource
from reconciler.diff.model import AlertChange, ChangeKind
from reconciler.model.fleet import AlertRule

_COMPARED = ("for_", "severity", "route", "summary", "runbook", "selector", "by")
_SHOWN = {"for_": "for"}


def _rules(repo: AlertSource) -> dict[str, tuple[str, AlertRule]]:
    return {r.name: (rel, r) for rel, f in sorted(repo.alerts.items()) for r in f.rules}


def diff_alerts(base: AlertSource, head: AlertSource) -> tuple[AlertChange, ...]:
    """Every alert that differs between two repos, by name."""
    was, now = compile_alerts(base).expressions, compile_alerts(head).expressions
    old_rules, new_rules = _rules(base), _rules(head)
    out: list[AlertChange] = []
    for name in sorted(was.keys() | now.keys()):
        if name not in was:
            out.append(
                AlertChange(
                    name=name, kind=ChangeKind.ADDED, file=new_rules[name][0], new_expr=now[name]
                )
            )
        elif name not in now:
            out.append(
                AlertChange(
                    name=name, kind=ChangeKind.REMOVED, file=old_rules[name][0], old_expr=was[name]
                )
            )
        else:
            (_, old), (rel, new) = old_rules[name], new_rules[name]
            fields = tuple(
                _SHOWN.get(k, k) for k in _COMPARED if getattr(old, k) != getattr(new, k)
            )
            if was[name] != now[name] or fields:
                out.append(
                    AlertChange(
                        name=name,
                        kind=ChangeKind.CHANGED,
                        file=rel,
                        old_expr=was[name],
                        new_expr=now[name],
                        fields=fields,
                    )
                )
    return tuple(out)


def diff_alerts_live(repo: AlertSource, loaded: Mapping[str, str]) -> tuple[AlertChange, ...]:
    """The repo's alerts against those a Prometheus has loaded (alert name -> PromQL)."""
    now, rules = compile_alerts(repo).expressions, _rules(repo)
    out: list[AlertChange] = []
    for name in sorted(now.keys() | loaded.keys()):
        if name not in loaded:
            out.append(
                AlertChange(
                    name=name, kind=ChangeKind.ADDED, file=rules[name][0], new_expr=now[name]
                )
            )
        elif name not in now:
            out.append(AlertChange(name=name, kind=ChangeKind.REMOVED, old_expr=loaded[name]))
        elif " ".join(loaded[name].split()) != now[name]:
            out.append(
                AlertChange(
                    name=name,
                    kind=ChangeKind.CHANGED,
                    file=rules[name][0],
                    old_expr=loaded[name],
                    new_expr=now[name],
                )
            )
    return tuple(out)
