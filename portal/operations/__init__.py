"""What operators watch: liveness (``/health/``), readiness (``/ready/``) and metrics in
Prometheus's text format (``/metrics``). See the README, "Operating it"."""
