"""The NumPy engine: layers, losses, initializers, optimizers, schedules and the network."""
