"""Definitions shared by the operator and the extractor: one meaning for each concept."""
