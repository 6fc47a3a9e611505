"""The human side: accounts, the case queue, the agent API. Knows no channel adapter."""
