"""`python -m dlrun`: the same command line as `dlrun`."""

from .cli import app

app(prog_name="dlrun")
