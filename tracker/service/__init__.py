"""The long-running processes: the daemon (``callwatch run``), the workers that share its
database (``callwatch worker``), and the health rule and metrics the web app serves for them."""
