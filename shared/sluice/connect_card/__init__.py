"""The Connect Card: signed tokens, the hosted setup form and page."""
