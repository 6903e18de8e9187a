"""Labelled territories and their effective-dated perimeter, governance and name."""
