"""Training: the loop, recipes (optimiser and schedule), augmentation and the ridge probe.

Imports data, models and the inference core (checkpoint format, forward pass);
never evaluation or workflows.
"""
