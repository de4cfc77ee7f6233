"""Detection: finding label bias without clean labels, and what a clean audit buys."""
