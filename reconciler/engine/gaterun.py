"""Running the gates for the driver: windows from a metric source, waits, retries, verdicts.

At a wave's soak start the driver calls `open(wave)`: the source marks every
agent of the fleet. At the gate, `judge(...)` measures the window (retrying a
source that fails, `retries` times, `retry_delay_s` apart; still failing: the
gates FAIL), splits the agents into canary (changed and healthy) and unchanged,
and asks `gates.judge_wave`. While any gate is INCONCLUSIVE it measures again
every `poll_s` on the same, growing window, up to `inconclusive_wait_s`; then
the inconclusive gates FAIL. Any other exception in a gate run (a bug in a
source, a window that is not one) FAILS the gates with the error named: a gate
run never crashes the rollout, and never passes on what it could not measure.
Unchanged agents' windows are kept: they are the "before the change" baseline
of the waves that follow.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import cast

from reconciler.gates import (
    AgentInfo,
    AgentWindow,
    GateVerdict,
    Outcome,
    judge_wave,
    window_problem,
)
from reconciler.metrics.source import Measurement, MetricSource, SourceError
from reconciler.model.fleet import Gate
from reconciler.rollout.clock import Clock
from reconciler.rollout.reporter import JsonValue

Note = Callable[..., None]


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """The gates and how long and how often to try."""

    gates: tuple[Gate, ...]
    tier_gates: Mapping[str, tuple[Gate, ...]]  # a tier's own gate list (overrides merged)
    info: Mapping[str, AgentInfo]  # every agent of the fleet
    retries: int = 3
    retry_delay_s: float = 2.0
    inconclusive_wait_s: float = 600.0
    poll_s: float = 15.0
    stale_after_s: float = 45.0

    def gates_for(self, tier: str) -> Sequence[Gate]:
        return self.tier_gates.get(tier, self.gates)


def merge_gates(fleet: Sequence[Gate], tier: Sequence[Gate] | None) -> tuple[Gate, ...]:
    """The fleet's gates with a tier's gates replacing those of the same name (new ones added)."""
    if not tier:
        return tuple(fleet)
    mine = {g.name: g for g in tier}
    merged = [mine.pop(g.name, g) for g in fleet]
    return (*merged, *mine.values())


class GateRunner:
    """Measures and judges each wave's gates; keeps the before-the-change windows."""

    def __init__(self, source: MetricSource, policy: GatePolicy, clock: Clock) -> None:
        self.source, self.policy, self.clock = source, policy, clock
        self._marks: dict[int, object] = {}
        self.before: dict[str, AgentWindow] = {}
        self.queries = 0  # measurements taken (for tests and the journal)

    @property
    def agents(self) -> list[str]:
        return sorted(self.policy.info)

    async def _retry(self, what: str, call: Callable[[], object], note: Note) -> object:
        """Await `call()`; a SourceError is retried `retries` times, then raised."""
        tries = self.policy.retries + 1
        for attempt in range(1, tries + 1):
            try:
                return await call()  # type: ignore[misc]
            except SourceError as exc:
                if attempt == tries:
                    raise SourceError(f"{what} failed {tries} time(s): {exc}") from None
                note("gates.retry", what=what, attempt=attempt, error=str(exc))
                await self.clock.sleep(self.policy.retry_delay_s)
        raise AssertionError("unreachable")

    async def open(self, wave: int, note: Note) -> None:
        """Mark the start of the wave's window (a failing source is noted; judge retries)."""
        try:
            self._marks[wave] = await self._retry(
                f"{self.source.name} mark", lambda: self.source.open(self.agents), note
            )
        except SourceError as exc:
            note("warning", message=f"gates: cannot open the wave's window: {exc}")
        except Exception as exc:
            note("warning", message=f"gates: cannot open the wave's window: {_describe(exc)}")

    async def judge(
        self, wave: int, changed: Collection[str], healthy: Sequence[str], note: Note
    ) -> list[GateVerdict]:
        """Every gate's verdict for the wave (never a pass on missing or thin data)."""
        p = self.policy
        waited = 0.0
        try:
            mark = self._marks.get(wave)
            if mark is None:  # resumed, or the source was down at the soak's start
                mark = await self._retry(
                    f"{self.source.name} mark", lambda: self.source.open(self.agents), note
                )
                self._marks[wave] = mark
                await self.clock.sleep(p.poll_s)
                waited += p.poll_s
            while True:
                got = cast(
                    Measurement,
                    await self._retry(
                        f"{self.source.name} query",
                        lambda: self.source.measure(mark, self.agents),
                        note,
                    ),
                )
                self.queries += 1
                verdicts, unchanged = self._verdicts(got, changed, healthy)
                pending = [v for v in verdicts if v.outcome is Outcome.INCONCLUSIVE]
                if any(v.outcome is Outcome.FAIL for v in verdicts) or not pending:
                    break
                if waited >= p.inconclusive_wait_s:
                    verdicts = [
                        replace(
                            v,
                            outcome=Outcome.FAIL,
                            reason=f"still inconclusive after waiting {waited:g}s: {v.reason}",
                        )
                        if v.outcome is Outcome.INCONCLUSIVE
                        else v
                        for v in verdicts
                    ]
                    break
                note(
                    "gates.waiting", wave=wave + 1, waited_s=round(waited, 1),
                    limit_s=p.inconclusive_wait_s,
                    pending=[_figure(v) for v in pending],
                )  # fmt: skip
                await self.clock.sleep(p.poll_s)
                waited += p.poll_s
        except SourceError as exc:
            return self._failed(f"no measurement: {exc}", changed, healthy)
        except Exception as exc:
            return self._failed(f"gate run failed: {_describe(exc)}", changed, healthy)
        if all(v.ok for v in verdicts):
            self.before.update(unchanged)
        self._marks.pop(wave, None)
        return verdicts

    def _failed(
        self, reason: str, changed: Collection[str], healthy: Sequence[str]
    ) -> list[GateVerdict]:
        """Every gate that would have judged the wave, FAILED with `reason` (never none)."""
        p = self.policy
        gates: dict[str, Gate] = {g.name: g for g in p.gates}
        for agent in (*changed, *healthy):
            info = p.info.get(agent)
            if info is not None:
                gates.update((g.name, g) for g in p.gates_for(info.tier) if g.name not in gates)
        if not gates:
            return [GateVerdict(gate="metrics", metric="custom", outcome=Outcome.FAIL,
                                reason=reason)]  # fmt: skip
        return [
            GateVerdict(gate=g.name, metric=g.metric, outcome=Outcome.FAIL, reason=reason)
            for g in gates.values()
        ]

    def _verdicts(
        self, got: Measurement, changed: Collection[str], healthy: Sequence[str]
    ) -> tuple[list[GateVerdict], dict[str, AgentWindow]]:
        p = self.policy
        canary: dict[str, AgentWindow] = {}
        problems: dict[str, str] = {}
        unchanged: dict[str, AgentWindow] = {}
        for agent in self.agents:
            w = got.windows.get(agent, "no answer for this agent")
            why = (
                w
                if isinstance(w, str)
                else window_problem(w, agent=agent, now=got.now, stale_after_s=p.stale_after_s)
            )
            if agent in healthy:
                if why is not None or isinstance(w, str):
                    problems[agent] = why or "no window"
                else:
                    canary[agent] = w
            elif agent not in changed and why is None and not isinstance(w, str):
                unchanged[agent] = w
        verdicts = judge_wave(p.gates_for, p.info, canary, unchanged, self.before, problems)
        return verdicts, unchanged


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _figure(v: GateVerdict) -> JsonValue:
    return dict(v.as_json())


def figures_json(verdicts: Sequence[GateVerdict]) -> list[JsonValue]:
    """The verdicts as JSON for notes, the journal and the incident report."""
    return [_figure(v) for v in verdicts]
