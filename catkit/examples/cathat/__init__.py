"""cathat package."""
