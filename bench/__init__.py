"""Benchmarks of the intake bot against a minimal python-telegram-bot baseline (see bench/README.md)."""
