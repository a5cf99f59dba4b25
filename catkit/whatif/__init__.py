"""What-if: traffic shapes and load tests, calibration, the offline simulator, recommendations.

``load`` (traffic shapes and an async SigV4 load generator), ``calibrate`` (one instance's
service model from a saturation test), ``simulate`` (the scaling engine on simulated traffic),
``recommend`` (a sweep of scaling settings ranked by cost under an SLO). Above the AWS helpers,
below the notebook-facing code.
"""
