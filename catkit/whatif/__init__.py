"""What-if: traffic shapes and load tests, calibration, the offline simulator, recommendations.

``shapes`` (traffic shapes: request rate as a function of time), ``load`` (the async SigV4 load
generator that sends a shape to an endpoint), ``calibrate`` (one instance's service model from a
saturation test), ``simulate`` (the scaling engine on simulated traffic), ``recommend`` (a sweep of
scaling settings ranked by cost under an SLO). Scaling settings are
:class:`catkit.autoscaling.config.ScalingConfig` values. Above the AWS helpers, below the
notebook-facing code.
"""
