"""workshop: an interactive teaching shell that shows how Linux containers really work."""

from __future__ import annotations

__version__ = "0.1.0"
