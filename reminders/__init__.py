"""Dossier tracking: statuses from the office's one-stop software, citizens following their dossiers,
and reminders planned, claimed and sent from durable rows in the database."""
