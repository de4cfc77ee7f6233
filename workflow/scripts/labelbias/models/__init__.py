"""Models: the network, its training on the cache, augmentation and the metrics training needs."""
