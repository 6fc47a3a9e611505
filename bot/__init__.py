"""The customer side: channels, the router between bot and people, the web app and the CLI."""
