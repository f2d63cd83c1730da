"""``--metrics-port``: Prometheus /metrics, /healthz and /readyz."""
