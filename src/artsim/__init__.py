"""artsim."""
