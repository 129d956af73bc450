"""`dlrun train`: building an experiment from a config, the training loop, the session that
writes a run directory, resuming one, and stopping on signals."""
