"""Rasa SDK custom actions: answering from the knowledge base and asking for a person."""
