"""LightningModules: linear regression, the MLP and the character-level RNN."""
