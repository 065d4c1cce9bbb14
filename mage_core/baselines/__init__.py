"""Baselines on the same data and acting interface: BC, Decision Transformer, Diffuser."""
