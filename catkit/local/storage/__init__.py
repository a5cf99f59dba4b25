"""Durable storage of the local backend: S3 objects on disk, control-plane state in sqlite."""
