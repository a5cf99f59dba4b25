"""autoscaling package."""
