"""Outbound e-mail: typed messages, a durable outbox, SMTP delivery with retries."""
