"""Quality and security gate helpers of prodready.deploy (private: the API may change)."""
