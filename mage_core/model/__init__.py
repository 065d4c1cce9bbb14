"""Model definitions: multi-scale trajectory autoencoder, multi-scale transformer, inverse dynamics."""
