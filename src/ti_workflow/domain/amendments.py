"""Guards, effects and forms of the amendment workflows (FAQ 2.3), registered on import."""

from __future__ import annotations
