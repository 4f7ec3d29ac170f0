"""Preflight checks of prodready.deploy (private: the API may change without notice)."""
