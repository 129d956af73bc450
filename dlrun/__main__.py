"""`python -m dlrun`: the same command line as `dlrun`."""

from .cli import app

app()
