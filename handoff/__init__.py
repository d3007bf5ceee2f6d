"""Handing a conversation to an officer (issue 15): office hours, the delivery service; the chat side is
handlers/handoff.py, the data knowledge/handoff_store.py, the officers' inbox web/inbox.py."""
