"""Events infersight derives from what it stores (pod health, restarts, service status), and their hub."""
