"""Readers of other people's model files, all as data, never as code."""
