"""Code the tests share: composing real configs, running the real scripts, broken models."""
