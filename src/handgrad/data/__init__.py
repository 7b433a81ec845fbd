"""LightningDataModules for the synthetic regression sets and The Time Machine."""
