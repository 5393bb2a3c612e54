"""The `kinema` command line: thin wiring of sim, agents, data and deploy."""
