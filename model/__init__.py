"""The data model every part shares: labels, matchers, samples and series. Imports nothing else."""
