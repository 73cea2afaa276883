"""Faces: the protocols clients speak. Each turns hub events into its own wire format."""
