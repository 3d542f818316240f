"""The built-in rule data, shipped inside the package as `scrubber.builtin_rules` (see
pyproject.toml). Data only: nothing here is code."""
