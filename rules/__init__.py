"""The shipped rule pack: one YAML file per rule, read via importlib.resources."""
