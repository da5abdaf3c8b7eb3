"""inferwatch streaming service: settings, event records and decoding, agents, alert outputs, metrics, CLI."""
