"""Plumbing every room shares: settings, database engines, the event log and the message bus."""
