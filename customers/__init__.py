"""Customers: one record per person across channels, verified identities, merges and data rights."""
