"""Model definitions: multi-scale trajectory autoencoder, multi-scale transformer, inverse dynamics, and MAGE."""
from mage_core.model.mage import MAGE, SampleOut, count_parameters  # noqa: F401
from mage_core.model.mtae import make_scale_schedule  # noqa: F401
