"""Where gate metrics come from: one `MetricSource` protocol, two sources.

`ScrapeSource` reads each box's /metrics directly (the embedded default);
`PrometheusSource` asks a Prometheus server over its HTTP API. Both turn
counters into per-agent `AgentWindow`s between a mark and a measurement.
"""
