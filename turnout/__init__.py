"""turnout: make multi-model LLM pipelines reliable, and prove it.

The distribution has four packages that work alone and together (see README.md):
``router`` (the async router and the ``turnout serve`` sidecar), ``mockproviders`` (the mock
OpenAI/Anthropic/Mistral server), ``chaos`` (faults, scenarios, the fault proxy and drills) and
``loadtests`` (Locust suites). This package holds the shared command line (:mod:`turnout.cli`)
and the shared leaf, what every package needs once: :mod:`turnout.sse` (server-sent events, both
ways), :mod:`turnout.durations`, :mod:`turnout.yamlfile` (YAML files with ``${VAR}``),
:mod:`turnout.logs` (structlog, one place that formats), :mod:`turnout.safejson` (bounded JSON) and
:mod:`turnout.problems` (error wording). Every package may import the leaf; the leaf imports
none of them, nor the command line (tests/turnout/test_turnout_leaf.py holds it to that).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("turnout")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
