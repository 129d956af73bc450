"""`dlrun report`: runs and sweeps as one self-contained HTML page."""
