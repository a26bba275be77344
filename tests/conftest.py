"""Test-wide set-up: nothing. The mock providers' fixtures come from turnout's own pytest plugin
(the ``pytest11`` entry point), exactly as in a user's project, and respx's plugin stays on."""
