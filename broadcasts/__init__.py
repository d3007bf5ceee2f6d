"""Announcements to citizens who subscribed: who gets them, composing, durable delivery at the platform's limit."""
