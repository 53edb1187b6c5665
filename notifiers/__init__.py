"""Delivery channels: one module per channel (Telegram, email, webhook, console)."""
