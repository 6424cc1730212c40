"""The package behind utils.py; see utils.py for the data flow and the public names."""
