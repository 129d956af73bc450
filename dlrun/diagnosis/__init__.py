"""`dlrun diagnose`: bias and variance against human-level error, training checks, hidden-unit
checks, the recipe of what to try next, and the report."""
