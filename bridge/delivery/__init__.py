"""Delivery of what a person says to the bot (the vendor's "user sends message")."""
