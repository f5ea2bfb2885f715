"""The ``infersight`` command and the processes it runs: run, demo, server, sidecar."""
