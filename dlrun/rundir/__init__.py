"""The run directory: its layout, atomic writes, the lock of the process training it,
checkpoints, and the one reader every command uses."""
