"""One episode: the rollout loop, the perturbed start, which episodes are filmed, and the video writer."""
