"""What to work on next: learning curves (and, later, more of the course's strategy lessons)."""
