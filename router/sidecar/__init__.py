"""turnout's sidecar: the router as an OpenAI-compatible HTTP server (``turnout serve``)."""

from router.sidecar.app import create_app
from router.sidecar.settings import SidecarSettings
from router.sidecar.state import Built

__all__ = ["Built", "SidecarSettings", "create_app"]
