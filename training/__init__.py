"""Reptile meta-training on Omniglot: data, batched meta-learning, evaluation, export."""
