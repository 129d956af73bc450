"""`dlrun compare` and `dlrun diff`: runs collected into one table, and its views."""
