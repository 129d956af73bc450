"""`dlrun sweep`: search spaces, the sweep loop, trials, the worker pools that run them
(local or Dask), and the live view."""
