"""Audit: replay, state at an instant, verification, checkpoints, export."""
