"""On-disk caches: image features per (backbone, weights, dataset, split, transform, samples); text features per string."""
