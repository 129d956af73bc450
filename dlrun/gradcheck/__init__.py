"""`dlrun gradcheck`: two-sided finite differences against backpropagation, and the report."""
