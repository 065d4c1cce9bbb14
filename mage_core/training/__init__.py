"""Training: the generic loop every algorithm trains with (loop.py) and MAGE's three stages on it (mage_stages.py)."""
