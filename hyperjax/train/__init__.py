"""The training loop: replay buffer, jitted chunks of env steps and updates, evaluation."""
