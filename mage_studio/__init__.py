"""MAGE Studio: the Qt desktop planning studio built on mage_core."""
