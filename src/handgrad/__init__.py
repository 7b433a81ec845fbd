"""handgrad: classic small models whose backward passes are derived by hand and checked."""

__version__ = "0.1.0"
