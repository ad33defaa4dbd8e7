"""The network-facing charging API: usage records (offline) and credit control (online)."""
