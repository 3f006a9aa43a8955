"""Measuring: cheap per-test counters, the session power model, attribution and grid intensity."""
