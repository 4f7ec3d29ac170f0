"""Load test helpers of prodready.deploy (private: the API may change)."""
