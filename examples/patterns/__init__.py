"""Runnable examples of the router's patterns, offline against the mock.

python -m examples.patterns.NAME    (research_pipeline, routing, cascade, ensemble)
"""
