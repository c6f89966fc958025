"""The engine: carries the pure core's commands out against the boxes.

`driver` executes the rollout machine's commands, `boxops` holds the per-box steps
(`apply_box`, `restore_box`), `resume` finishes a cut-short rollout, `session` builds
a run from a request, `gaterun`/`gatesetup` measure the metric gates.
"""
