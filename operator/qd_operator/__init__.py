"""The kopf operator that turns an ExtractionRun into memory-limited Jobs."""
