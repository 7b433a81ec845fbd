"""Optimizers: per-parameter learning rates (`param_groups`) and the hand-written SGD and Adam
(`hand_optimizers`). The allowed settings are `handgrad.settings.optimizer`'s."""
