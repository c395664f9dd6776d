"""CLI for the simulator (`pdtui sim ...`, `pdtui demo`): filled in with the simulator."""
