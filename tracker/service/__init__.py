"""The long-running processes: the daemon (``callwatch run``), the workers that share its
database (``callwatch worker``), and the health, metrics and feed server inside them."""
