"""Nudge benchmarks: synthetic shops, the planner's throughput, and one window end to end on moto.

``python -m bench.run`` (``make bench``) runs everything and writes ``bench/results.json``.
"""
