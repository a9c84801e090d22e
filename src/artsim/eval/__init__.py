"""Evaluation layer: retrieval and verification metrics, and the evaluation of a run folder."""
