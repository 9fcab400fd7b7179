"""`make chaos` (python -m tools.chaos): faults under load, and checks that nothing was lost; see __main__."""
