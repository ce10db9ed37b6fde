"""The shop agent: seeded shop data (shop.py), function tools (tools.py), tool faults
(faults.py) and the agent loop of one chat turn (turn.py). Import the modules directly: config.py
imports tools and faults, and turn.py imports config."""
