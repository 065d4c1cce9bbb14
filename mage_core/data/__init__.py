"""Datasets: generation (D4RL/pointmaze protocol), Minari storage and D4RL import, and the segment pipeline."""
