"""The release report of prodready.deploy (private: the API may change without notice)."""
