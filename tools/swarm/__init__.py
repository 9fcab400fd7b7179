"""The simulated Docker Swarm (python -m tools.swarm): Docker-in-Docker nodes, a registry, a smoke deploy."""
