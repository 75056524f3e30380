"""Groups and their destinations."""
