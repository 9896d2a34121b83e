"""The workflow code that wrote tests/upstream/sdk-python-1591-cold-update.json, frozen for the tripwire."""
