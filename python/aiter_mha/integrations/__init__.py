"""Integrations with other frameworks; each submodule imports its framework (transformers, ...)."""
