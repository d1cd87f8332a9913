"""The benchmark suite. Every ``python -m benchmarks.<script>`` imports this package first: the known
dependency noise (mujoco-mjx's warp lines, Brax's maintenance warning) is off for the whole process."""

from hyperjax.experiments import quiet

quiet.install()
